"""Arguments shared by the sub-commands that read a scenario."""

from __future__ import annotations

import argparse

from abm.config import Scenario, load_scenario


def add_scenario_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG and repeatable ``--set KEY.PATH=VALUE``."""
    parser.add_argument("config", metavar="CONFIG", help="scenario TOML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key, e.g. --set fields.glucose.decay_per_s=1e-4 (repeatable)",
    )


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    return load_scenario(args.config, args.overrides)
