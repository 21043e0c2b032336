"""Errors of the sandbox layer."""


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run at all (no Docker, no image, no bwrap); the message says how
    to fix it."""
