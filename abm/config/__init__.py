"""Scenario configuration: schema, loading, overrides and validation."""

from __future__ import annotations

from abm.config.loader import ConfigErrors, load_scenario, to_toml, validate
from abm.config.schema import Scenario

__all__ = ["ConfigErrors", "Scenario", "load_scenario", "to_toml", "validate"]
