"""Rewrite the config reference table in README.md from the schema."""

from __future__ import annotations

from pathlib import Path

from abm.config.reference import BEGIN, END, markdown

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
head, rest = text.split(BEGIN, 1)
_, tail = rest.split(END, 1)
readme.write_text(f"{head}{BEGIN}\n{markdown()}\n{END}{tail}")
print(f"updated {readme.name}")
