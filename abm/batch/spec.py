"""The batch specification: a TOML file of arms, a parameter sweep and replicates.

Example (paths relative to the spec file's folder)::

    name = "rankl"                     # default output folder batches/NAME
    base = "../configs/baseline.toml"  # scenario every arm starts from
    seed = 2026                        # entropy of every run's seed
    replicates = 3                     # stochastic replicates per arm x sample
    days = 80                          # time.days of every run (default: the scenario's)
    set = ["geometry.shape_voxels=[60, 60, 60]"]   # overrides for every run

    [[arms]]                           # default: one arm "base" = the base scenario
    name = "baseline"

    [[arms]]
    name = "rankl_x4"
    set = ["signalling.rank.matrix_rankl_per_s=0.008"]
    # scenario = "my_arm.toml"         # an arm may start from its own scenario file

    [sweep]                            # optional; crossed with every arm
    method = "sobol"                   # grid | latin | sobol | morris
    samples = 8                        # latin: points; sobol: N (a power of 2); morris: trajectories
    [[sweep.parameters]]
    key = "cells.osteoclast.activation_per_mm2_per_year"
    bounds = [0.4, 1.6]                # latin, sobol, morris (uniform); grid takes values = [...]

Validation works like the scenario schema (unknown keys rejected, every error one line
``path: message (got VALUE, allowed RANGE)``); :func:`load_spec` raises
:class:`~abm.config.ConfigErrors` listing them all.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from abm.config import ConfigErrors
from abm.config.loader import read_toml
from abm.config.schema_base import Section
from abm.errors import UserError

METHODS = ("grid", "latin", "sobol", "morris")
_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NAME_ALLOWED = "letters, digits, '_' and '-', starting with a letter or digit"


class Parameter(Section):
    """One swept config key."""

    key: str = Field(description="config key path, e.g. signalling.rank.matrix_rankl_per_s",
                     json_schema_extra={"allowed": "a config key path such as cells.osteoclast.lifespan_days"})
    values: list[Any] | None = Field(None, min_length=1, description="grid values (method grid)",
                                     json_schema_extra={"allowed": "a non-empty list of values (method grid)"})
    bounds: list[float] | None = Field(None, min_length=2, max_length=2,
                                       description="[low, high] of a uniform range (latin, sobol, morris)",
                                       json_schema_extra={"allowed": "two numbers [low, high] with low < high"})
    integer: bool = Field(False, description="round sampled values to integers (integer config keys)")


class Sweep(Section):
    """How the parameter samples are drawn."""

    method: Literal["grid", "latin", "sobol", "morris"] = Field(description="sampling design")
    parameters: list[Parameter] = Field(min_length=1, description="swept keys")
    samples: int | None = Field(None, ge=1, le=1_000_000,
                                description="latin: points; sobol: base samples N (a power of 2); morris: trajectories")
    second_order: bool = Field(False, description="sobol: also sample for second-order indices")
    levels: int = Field(4, ge=2, le=100, description="morris: grid levels")


class Arm(Section):
    """One arm: a scenario (the base unless given) and overrides."""

    name: str = Field(description="arm name (run ids and tables)", json_schema_extra={"allowed": _NAME_ALLOWED})
    description: str = Field("", description="free text")
    scenario: str | None = Field(None, description="scenario file of this arm, relative to the spec (default: base)")
    overrides: list[str] = Field(default_factory=list, alias="set",
                                 description="--set style overrides KEY.PATH=VALUE")


class BatchSpec(Section):
    """A whole batch."""

    name: str = Field("batch", description="batch name (default output folder batches/NAME)",
                      json_schema_extra={"allowed": _NAME_ALLOWED})
    description: str = Field("", description="free text")
    base: str | None = Field(None, description="base scenario file, relative to the spec")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="entropy of the run seeds and of the samples")
    replicates: int = Field(1, ge=1, le=100_000, description="stochastic replicates per arm and sample")
    days: float | None = Field(None, ge=0, le=36500, description="time.days of every run (default: the scenario's)")
    overrides: list[str] = Field(default_factory=list, alias="set", description="overrides applied to every run")
    arms: list[Arm] = Field(default_factory=list, description="arms (default: one arm 'base')")
    sweep: Sweep | None = Field(None, description="parameter sweep crossed with every arm")


def load_spec(path: str | Path) -> tuple[BatchSpec, Path]:
    """Read and validate a batch spec; return it and its folder (for relative paths)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: batch spec not found")
    return validate_spec(read_toml(path), path.name), path.resolve().parent


def validate_spec(data: dict[str, Any], where: str = "batch spec") -> BatchSpec:
    """Validate plain data; raise ConfigErrors with every problem, each prefixed by ``where``."""
    try:
        spec = BatchSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigErrors([f"{where}: {_format(e)}" for e in err.errors()]) from None
    problems = _consistency(spec)
    if problems:
        raise ConfigErrors([f"{where}: {line}" for line in problems])
    if not spec.arms:
        spec.arms = [Arm(name="base")]
    return spec


def _consistency(spec: BatchSpec) -> list[str]:
    """Rules across keys, with the path of the offending key."""
    out = []
    if not _ARM_NAME.match(spec.name):
        out.append(f"name: not a valid name (got {spec.name!r}, allowed {_NAME_ALLOWED})")
    seen: set[str] = set()
    for i, arm in enumerate(spec.arms):
        if not _ARM_NAME.match(arm.name):
            out.append(f"arms.{i}.name: not a valid arm name (got {arm.name!r}, allowed {_NAME_ALLOWED})")
        elif arm.name in seen:
            out.append(f"arms.{i}.name: duplicate arm name (got {arm.name!r}, allowed a name not used by another arm)")
        seen.add(arm.name)
        if spec.base is None and arm.scenario is None:
            out.append(f"arms.{i}.scenario: required when the spec has no base (got nothing, allowed a scenario file)")
    if spec.base is None and not spec.arms:
        out.append("base: required when there are no arms (allowed a scenario file relative to the spec)")
    for text, where in [(t, "set") for t in spec.overrides] + [
        (t, f"arms.{i}.set") for i, arm in enumerate(spec.arms) for t in arm.overrides
    ]:
        key, sep, _ = text.partition("=")
        if not sep or not all(part.strip() for part in key.split(".")):
            out.append(f"{where}: not an override (got {text!r}, allowed KEY.PATH=VALUE)")
    sweep = spec.sweep
    if sweep is None:
        return out
    keys: set[str] = set()
    for i, par in enumerate(sweep.parameters):
        loc = f"sweep.parameters.{i}"
        if not par.key or not all(part.strip() for part in par.key.split(".")):
            out.append(f"{loc}.key: not a key path (got {par.key!r}, allowed a config key path)")
        if par.key in keys:
            out.append(f"{loc}.key: swept twice (got {par.key!r}, allowed each key once)")
        keys.add(par.key)
        if par.key in ("name", "seed"):
            out.append(f"{loc}.key: set by the batch itself (got {par.key!r}, allowed any other config key)")
        if sweep.method == "grid":
            if par.values is None:
                out.append(f"{loc}.values: required for method 'grid' (allowed a non-empty list of values)")
            if par.bounds is not None:
                out.append(f"{loc}.bounds: only for latin, sobol and morris (got {par.bounds}, allowed values = [...])")
        else:
            if par.bounds is None:
                out.append(f"{loc}.bounds: required for method {sweep.method!r} (allowed [low, high] with low < high)")
            elif not (math.isfinite(par.bounds[0]) and math.isfinite(par.bounds[1]) and par.bounds[0] < par.bounds[1]):
                out.append(f"{loc}.bounds: low must be below high (got {par.bounds}, allowed [low, high] with low < high)")
            if par.values is not None:
                out.append(f"{loc}.values: only for method 'grid' (got a list, allowed bounds = [low, high])")
    if sweep.method == "grid":
        if sweep.samples is not None:
            out.append(f"sweep.samples: not used by method 'grid' (got {sweep.samples}, allowed nothing: the grid sets it)")
    elif sweep.samples is None:
        out.append(f"sweep.samples: required for method {sweep.method!r} (allowed an integer >= 1)")
    elif sweep.method == "sobol" and sweep.samples & (sweep.samples - 1):
        out.append(f"sweep.samples: Sobol' sampling needs a power of 2 (got {sweep.samples}, allowed 2, 4, 8, 16, ...)")
    return out


# ------------------------------------------------------------------------ errors
_RANGE = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _format(error: dict[str, Any]) -> str:
    """One line: ``path: message (got VALUE, allowed RANGE)``."""
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc) or "(top level)"
    got = _show(error.get("input"))
    owner, info = _walk(loc)
    if error["type"] == "extra_forbidden":
        known = [f.alias or name for name, f in owner.model_fields.items()] if owner else []
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f", did you mean '{close[0]}'?" if close else ""
        return f"{path}: unknown key{hint} (got {got}, allowed keys: {', '.join(known)})"
    allowed = _allowed(info)
    if error["type"] == "missing":
        return f"{path}: required key is missing (allowed {allowed})"
    if error["type"] in ("model_type", "dict_type", "model_attributes_type"):
        return f"{path}: must be a table (got {got})"
    message = "out of range" if error["type"] in _RANGE else str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message} (got {got}, allowed {allowed})"


def _show(value: Any) -> str:
    text = "a table" if isinstance(value, dict) else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(loc: list[str]) -> tuple[type[BaseModel] | None, Any]:
    """The model owning the last key of ``loc`` and that key's FieldInfo (None when unknown)."""
    model: Any = BatchSpec
    info = None
    owner = None
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            owner = model
            info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if info is None:
                return owner, None
            model = _bare(info.annotation)
        elif typing.get_origin(model) is list and part.isdigit():
            model = _bare(typing.get_args(model)[0])
        else:
            break
    return owner, info


def _bare(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _bare(args[0])
    return annotation


def _allowed(info: Any) -> str:
    if info is None:
        return "see the batch spec format"
    extra = info.json_schema_extra or {}
    if "allowed" in extra:
        return extra["allowed"]
    annotation = _bare(info.annotation)
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    kind = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(annotation)
    if kind is None and typing.get_origin(annotation) is list:
        kind = "a list of strings" if typing.get_args(annotation) == (str,) else "a list"
    if kind is None and typing.get_origin(annotation) is not None and str in typing.get_args(annotation):
        kind = "a string"
    bounds = [f"{sym} {getattr(m, attr)}" for m in info.metadata
              for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
              if getattr(m, attr, None) is not None]
    return " ".join(filter(None, [kind or info.description, " and ".join(bounds)])) or "see the batch spec format"
