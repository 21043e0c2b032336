"""What the static checks report: one finding per thing they saw, with its line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One observation of a static check.

    ``family`` names the kind of thing found (``"swallowed"``, ``"reads_own_file"``, ...);
    ``line`` is 1-based in the code that was analysed (the tests or the solution), 0 when
    the finding is about the code as a whole.
    """

    family: str
    line: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.family}: {self.detail}{where}"
