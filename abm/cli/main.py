"""The ``abm`` command line.

Each sub-command lives in its own module of :mod:`abm.cli` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int``. User mistakes raise :class:`abm.errors.UserError`; they
are printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from abm import __version__
from abm.config import ConfigErrors
from abm.errors import UserError

#: Modules of :mod:`abm.cli` that provide sub-commands, in help order.
COMMAND_MODULES = ("run", "validate", "config", "measure", "plot", "report", "batch", "compare", "sensitivity")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="abm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"abm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"abm.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``abm`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ConfigErrors as err:
        for line in err.lines:
            print(line, file=sys.stderr)
        return 2
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
