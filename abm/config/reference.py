"""The config reference table (Markdown), generated from the schema.

The README embeds this table between ``<!-- config-reference -->`` markers and a
test checks that it is current, so the documentation cannot drift from the code.
Run ``python -m abm.config.reference`` to print it.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from abm.config.loader import _allowed, _unwrap
from abm.config.schema import Scenario

BEGIN, END = "<!-- config-reference -->", "<!-- /config-reference -->"


def rows(model: type[BaseModel] = Scenario, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, default, allowed, description) for every leaf key of the schema."""
    out: list[tuple[str, str, str, str]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation, _ = _unwrap(info.annotation)
        if typing.get_origin(annotation) is dict:
            annotation, key = _unwrap(typing.get_args(annotation)[1])[0], f"{key}.<name>"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += rows(annotation, f"{key}.")
            continue
        allowed = _allowed(key.replace("<name>", "x").split("."))
        out.append((key, _default(info), allowed, info.description or ""))
    return out


def _default(info: Any) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    return "none" if value is None else f"`{value!r}`".replace("'", '"')


def markdown() -> str:
    """The reference as a Markdown table."""
    lines = ["| key | default | allowed | meaning (unit) |", "| --- | --- | --- | --- |"]
    lines += [f"| `{key}` | {default} | {allowed} | {text} |" for key, default, allowed, text in rows()]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown())
