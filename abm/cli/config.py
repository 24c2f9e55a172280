"""``abm config CONFIG``: print the fully resolved scenario (extends and --set applied)."""

from __future__ import annotations

import argparse

from abm.cli.common import add_scenario_args, scenario_from_args
from abm.config import to_toml


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="print the fully resolved scenario as TOML")
    add_scenario_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(to_toml(scenario_from_args(args)), end="")
    return 0
