"""``abm validate CONFIG``: print ``ok`` or every error, one per line (exit 2)."""

from __future__ import annotations

import argparse

from abm.cli.common import add_scenario_args, scenario_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("validate", help="check a scenario file; print ok or every error")
    add_scenario_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    scenario_from_args(args)  # ConfigErrors (a UserError) lists every problem
    print("ok")
    return 0
