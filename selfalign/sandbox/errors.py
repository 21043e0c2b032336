"""Errors of the sandbox layer."""

from selfalign.errors import UserError


class SandboxUnavailable(UserError, RuntimeError):
    """The sandbox cannot run at all (no Docker, no image, no bwrap); the message says how
    to fix it."""
