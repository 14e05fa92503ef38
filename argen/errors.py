"""The project's error base class: a failure the user can fix from its message alone.

Every stage script turns a :class:`UserError` (and the few library errors listed in
:data:`argen.stage.USER_ERRORS`) into one logged line and exit code 1. Subclass it for a new kind of user
error; nothing needs registering.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or set-up (a dataset file, an upstream output, a missing tool); the message names it."""


class InputError(UserError):
    """An input file cannot be used: missing, unreadable, or without the content expected; the message names it."""
