"""The errors a user can fix. The CLI shows their message in one line, never a traceback.

Library code raises a subclass with a message that says how to fix the problem
(STYLE.md 10); ``selfalign.cli_support.cli_errors`` turns every one of them into a
short message and an exit code, whichever command (a stage's own, or ``generate``)
ran into it.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure of the user's set-up or input, not of selfalign: the message says what to do."""
