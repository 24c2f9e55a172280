"""The one exception type for user mistakes.

Anything a user can get wrong (a missing file, bad TOML, a value out of range)
raises :class:`UserError`; the command line prints its message as one line and
exits with status 2, never with a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in user input; ``str(err)`` is a complete one-line message."""
