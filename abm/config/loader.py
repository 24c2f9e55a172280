"""Reading scenarios: TOML files, ``extends`` chains, ``--set`` overrides, clear errors.

A scenario file may say ``extends = "baseline.toml"`` (a path relative to its own
folder) and give only what differs; tables are merged key by key, other values
replaced. ``--set a.b.c=VALUE`` overrides take TOML syntax for the value (numbers,
booleans, ``[1, 2]``, quoted strings); anything that does not parse as TOML is
taken as a plain string, so ``--set geometry.kind=microct`` works unquoted.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from abm.config.schema import Scenario
from abm.errors import UserError


class ConfigErrors(UserError):
    """Every validation error of one scenario, one ``path: message (got …, allowed …)`` line each."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file (data only, never executed); one-line UserError if it is not valid TOML or UTF-8."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: invalid TOML: {err}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a scenario file and everything it extends, merged, as plain data.

    Relative ``geometry.microct.path`` values are made relative to the current
    directory's view of the file that named them, so that extending works from
    any folder.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(p.name for p in (*_seen, resolved))
        raise UserError(f"{path}: extends forms a cycle ({chain})")
    data = read_toml(path)
    _anchor_paths(data, path.parent)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise UserError(f"{path}: extends: must be a file name (got {parent!r})")
    base = load_raw(path.parent / parent, (*_seen, resolved))
    return deep_merge(base, data)


def _anchor_paths(data: dict[str, Any], folder: Path) -> None:
    """Make a micro-CT path relative to the config file's folder."""
    microct = data.get("geometry", {}).get("microct")
    if isinstance(microct, dict) and isinstance(microct.get("path"), str):
        p = Path(microct["path"])
        if not p.is_absolute():
            microct["path"] = os.path.normpath(folder / p)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: tables recursively, other values replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=VALUE`` into its key path and TOML-parsed value."""
    key, sep, raw = text.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise UserError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. fields.glucose.decay_per_s=1e-4")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return [k.strip() for k in keys], value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return ``data`` with each ``KEY.PATH=VALUE`` override applied."""
    data = deep_merge(data, {})
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise UserError(f"--set {text!r}: {where} is a value, not a table")
            node[key] = child = dict(child)
            node = child
        node[keys[-1]] = value
    return data


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, merge, override and validate a scenario; raise :class:`ConfigErrors` listing every error."""
    data = apply_overrides(load_raw(path), overrides)
    return validate(data)


def validate(data: Mapping[str, Any]) -> Scenario:
    """Validate plain data against the schema."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigErrors([format_error(e, data) for e in err.errors()]) from None
    from abm.rules.catalogue import name_problems  # rules name fields and behaviours of the cells

    problems = name_problems(scenario)
    if problems:
        raise ConfigErrors(problems)
    return scenario


def to_toml(scenario: Scenario) -> str:
    """The fully resolved scenario as TOML text (every key, defaults included)."""
    return tomli_w.dumps(scenario.model_dump(mode="json", exclude_none=True))


# --------------------------------------------------------------------------- errors


def format_error(error: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """One line: ``path.to.key: message (got VALUE, allowed RANGE)``."""
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc) or "(top level)"
    got = _show(error.get("input"))
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f", did you mean '{close[0]}'?" if close else ""
        return f"{path}: unknown key{hint} (got {got}, allowed keys: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{path}: required key is missing (allowed {_allowed(loc)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in _RANGE_ERRORS:
        message = "out of range"
    if error["type"] in ("model_type", "dict_type"):
        return f"{path}: must be a table (got {got})"
    annotation = _walk(loc)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a whole-section rule
        return f"{path}: {message}"
    return f"{path}: {message} (got {got}, allowed {_allowed(loc)})"


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, dict):
        text = "a table"
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(loc: list[str]) -> tuple[Any, list[Any], str, dict[str, Any]]:
    """Follow a location through the schema.

    Returns the annotation of its last key (None if the key is not in the
    schema), the constraint metadata met on the way there, its description and
    its ``json_schema_extra``.
    """
    annotation: Any = Scenario
    metadata: list[Any] = []
    description = ""
    extra: dict[str, Any] = {}
    for part in loc:
        annotation, meta = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part)
            if info is None:
                return None, [], "", {}
            annotation, metadata, description = info.annotation, list(info.metadata), info.description or ""
            extra = dict(info.json_schema_extra or {})
        elif typing.get_origin(annotation) is dict:
            annotation, metadata, extra = typing.get_args(annotation)[1], [], {}
        elif typing.get_origin(annotation) is list and part.isdigit():
            annotation, metadata, extra = typing.get_args(annotation)[0], [], {}
        else:  # a union arm such as 'float' or "literal['a']": stay on the key itself
            break
    annotation, meta = _unwrap(annotation)
    return annotation, metadata + meta, description, extra


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated and Optional; return the bare annotation and Annotated's metadata."""
    metadata: list[Any] = []
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *metadata = typing.get_args(annotation)
        # Field(...) inside Annotated carries its constraints in its own metadata
        metadata = [m for item in metadata for m in getattr(item, "metadata", [item])]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        inner, more = _unwrap(args[0])
        return inner, metadata + more
    return annotation, metadata


def _known_keys(loc: list[str]) -> list[str]:
    annotation = _walk(loc)[0]
    if typing.get_origin(annotation) is dict:  # e.g. fields.<name>: keys of the value model
        annotation, _ = _unwrap(typing.get_args(annotation)[1])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _allowed(loc: list[str]) -> str:
    """Human description of what a key accepts, from its schema constraints."""
    annotation, metadata, description, extra = _walk(loc)
    if "allowed" in extra:  # a key whose rule the type alone does not say
        return extra["allowed"]
    literals = _literals(annotation)
    if literals:
        many = typing.get_origin(annotation) is list
        return ("a list of " if many else "one of ") + ", ".join(repr(v) for v in literals)
    bounds = [
        f"{sym} {getattr(meta, attr)}"
        for meta in metadata
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(meta, attr, None) is not None
    ]
    kind = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(annotation)
    if kind is None and typing.get_origin(annotation) is list:
        kind = "a list"
    if kind is None:
        kind = description
    return " ".join(filter(None, [kind, " and ".join(bounds)])) or "see the config reference"


def _literals(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        return _literals(_unwrap(typing.get_args(annotation)[0])[0])
    return ()
