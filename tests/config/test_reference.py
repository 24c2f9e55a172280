"""The README's config reference is the one the schema generates."""

from __future__ import annotations

from abm.config.reference import BEGIN, END, markdown, rows
from tests.conftest import REPO


def test_readme_reference_is_current():
    text = (REPO / "README.md").read_text()
    embedded = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert embedded == markdown(), "README config reference is stale: run python scripts/update_readme_reference.py"


def test_every_key_has_a_description_and_a_rule():
    for key, _default, allowed, text in rows():
        assert text, f"{key} has no description"
        assert allowed != "see the config reference", f"{key} has no allowed range"
