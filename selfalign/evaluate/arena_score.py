"""Arena scoring: per-question outcomes, rates, the score, and seeded bootstrap intervals.

Each game gives the evaluated model +2 / +1 / 0 / -1 / -2 points (``>>``, ``>``,
``=``, and the reverse). A question's two games are summed: a positive sum is a
win, zero a tie, a negative sum a loss. Over N scored questions:

    win rate = wins / N      tie rate = ties / N      score = (2·wins + ties) / (2·N)

so the score is 1 when the model wins everything, 0.5 for even, 0 when it loses
everything.

Missing verdicts (`MISSING_POLICIES`): with ``other_game`` (the default) a question
with one missing game is scored from its other game alone, and a question with
both missing is left out of N and counted under ``missing``; with ``exclude`` any
question with a missing game is left out and counted. No verdict is ever filled in.

The 95% interval is a percentile bootstrap over questions: resample the scored
questions with replacement (``rounds`` times, a seeded generator), recompute the
statistic, take the 2.5th and 97.5th percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # numpy is imported where the bootstrap runs, so that `selfalign --help` stays quick.
    import numpy as np

WIN, TIE, LOSS, MISSING = "win", "tie", "loss", "missing"
MISSING_POLICIES = ("other_game", "exclude")


def outcome(points: Sequence[int | None], policy: str = "other_game") -> tuple[str, int | None]:
    """A question's outcome and summed points from its games' points (None: missing game)."""
    if policy not in MISSING_POLICIES:
        raise ValueError(f"missing policy {policy!r} is unknown; choose one of {MISSING_POLICIES}")
    present = [p for p in points if p is not None]
    if not present or (policy == "exclude" and len(present) < len(points)):
        return MISSING, None
    total = sum(present)
    return (WIN if total > 0 else TIE if total == 0 else LOSS), total


def _score(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    return (2 * wins + ties) / 2


@dataclass
class Interval:
    """A two-sided bootstrap interval."""

    low: float
    high: float


@dataclass
class ArenaStats:
    """Win / tie / loss counts, rates and score of a group of questions, with intervals."""

    n: int
    wins: int
    ties: int
    losses: int
    missing: int
    win_rate: float | None
    tie_rate: float | None
    score: float | None
    score_ci: Interval | None
    win_rate_ci: Interval | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def bootstrap(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    rounds: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic`` (applied row-wise to resampled ``values``)."""
    import numpy as np

    n = len(values)
    picks = rng.integers(0, n, size=(rounds, n))
    samples = statistic(values[picks])
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(low=float(low), high=float(high))


def stats(
    outcomes: Sequence[str], *, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> ArenaStats:
    """The statistics of one group of question outcomes (``win``/``tie``/``loss``/``missing``)."""
    import numpy as np

    scored = [o for o in outcomes if o != MISSING]
    n = len(scored)
    wins, ties = scored.count(WIN), scored.count(TIE)
    if n == 0:
        return ArenaStats(0, 0, 0, 0, len(outcomes), None, None, None, None, None)
    win = np.array([o == WIN for o in scored], dtype=float)
    tie = np.array([o == TIE for o in scored], dtype=float)
    both = np.stack([win, tie], axis=1)
    rng = np.random.default_rng(seed)
    score_ci = bootstrap(
        both, lambda s: _score(s[..., 0], s[..., 1]).mean(axis=1), rounds=rounds, rng=rng,
        level=level,
    )
    win_ci = bootstrap(win, lambda s: s.mean(axis=1), rounds=rounds, rng=rng, level=level)
    return ArenaStats(
        n=n,
        wins=wins,
        ties=ties,
        losses=n - wins - ties,
        missing=len(outcomes) - n,
        win_rate=wins / n,
        tie_rate=ties / n,
        score=(2 * wins + ties) / (2 * n),
        score_ci=score_ci,
        win_rate_ci=win_ci,
    )


def grouped(
    keyed: Iterable[tuple[Iterable[str], str]], *, rounds: int = 1000, seed: int = 0
) -> dict[str, ArenaStats]:
    """Statistics per group; each item is (its group names, its outcome).

    A question in several groups (CodeArena lists several languages for some)
    counts in each of them.
    """
    by_group: dict[str, list[str]] = {}
    for names, result in keyed:
        for name in names:
            by_group.setdefault(name, []).append(result)
    return {
        name: stats(results, rounds=rounds, seed=seed)
        for name, results in sorted(by_group.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    }


def stats_from_dict(data: Mapping[str, object]) -> ArenaStats:
    """An `ArenaStats` back from its ``summary.json`` form."""
    values = dict(data)
    for key in ("score_ci", "win_rate_ci"):
        raw = values.get(key)
        values[key] = Interval(**raw) if isinstance(raw, dict) else None
    return ArenaStats(**values)  # type: ignore[arg-type]
