"""What later stages read from a judgment: mean ratings, judge pairs, agreement, ratings rows.

``select`` picks the best-rated passing answer (``best_rated``), ``pairs`` takes the
best against the worst rated answer of a task (``judge_pair``), and the export writes
one ``ratings_row`` per task in UltraFeedback's shape plus the card's numbers
(``rating_counts``, ``execution_agreement``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfalign.judge.rate import Candidate
from selfalign.records import Judgments


def _statuses(record: Judgments) -> dict[str, str]:
    # A record written without statuses (or a shorter list) gives '' for the rest.
    padded = list(record.statuses) + [""] * (len(record.attempt_ids) - len(record.statuses))
    return dict(zip(record.attempt_ids, padded, strict=False))


def _entry(record: Judgments, attempt_id: str) -> dict[str, Any] | None:
    return next((e for e in record.ratings if e.get("attempt_id") == attempt_id), None)


def rating(record: Judgments, attempt_id: str, preference: str) -> float | None:
    """One attempt's rating on one preference (None: not judged, or the judgment rejected)."""
    entry = _entry(record, attempt_id)
    if entry is None:
        return None
    value = entry.get("ratings", {}).get(preference)
    return float(value) if value is not None else None


def mean_rating(
    record: Judgments, attempt_id: str, preferences: Sequence[str] | None = None
) -> float | None:
    """The mean of an attempt's ratings over ``preferences`` (default: all judged ones).

    Preferences without a rating are left out of the mean; None when none has one.
    Within one task every judged attempt is missing the same preferences, unless
    swap kept one round of a preference for some (so means stay comparable).
    """
    entry = _entry(record, attempt_id)
    if entry is None:
        return None
    ratings = entry.get("ratings", {})
    names = preferences if preferences is not None else record.preferences
    present = [float(ratings[p]) for p in names if ratings.get(p) is not None]
    return sum(present) / len(present) if present else None


def mean_ratings(
    record: Judgments, preferences: Sequence[str] | None = None
) -> dict[str, float | None]:
    """Attempt id -> mean rating, for every judged attempt of the task."""
    return {a: mean_rating(record, a, preferences) for a in record.attempt_ids}


def best_rated(
    record: Judgments, among: Collection[str], preferences: Sequence[str] | None = None
) -> str | None:
    """The highest-rated attempt of ``among`` (first in sample order on a tie); None if
    none of them has a rating. For the ``judge`` pick rule of ``select``."""
    best: tuple[float, str] | None = None
    for attempt_id in record.attempt_ids:
        if attempt_id not in among:
            continue
        value = mean_rating(record, attempt_id, preferences)
        if value is not None and (best is None or value > best[0]):
            best = (value, attempt_id)
    return best[1] if best else None


@dataclass(frozen=True)
class JudgePair:
    """The best and the worst rated answers of a task, with their mean ratings."""

    chosen_attempt_id: str
    rejected_attempt_id: str
    chosen_rating: float
    rejected_rating: float

    @property
    def margin(self) -> float:
        return self.chosen_rating - self.rejected_rating


def judge_pair(
    record: Judgments,
    min_margin: float = 1.0,
    preferences: Sequence[str] | None = None,
    among: Collection[str] | None = None,
) -> JudgePair | None:
    """Chosen = highest mean rating, rejected = lowest; None when they are equal or
    closer than ``min_margin``. Ties go to the first attempt in sample order."""
    rated = [
        (value, attempt_id)
        for attempt_id in record.attempt_ids
        if among is None or attempt_id in among
        if (value := mean_rating(record, attempt_id, preferences)) is not None
    ]
    if len(rated) < 2:
        return None
    top = max(v for v, _ in rated)
    bottom = min(v for v, _ in rated)
    if top <= bottom or top - bottom < min_margin:
        return None
    chosen = next(a for v, a in rated if v == top)
    rejected = next(a for v, a in rated if v == bottom)
    return JudgePair(chosen, rejected, top, bottom)


@dataclass(frozen=True)
class Agreement:
    """Over a task's (passing, failing) answer pairs: how often the judge rates the
    passing one higher, lower, or the same."""

    agree: int = 0
    disagree: int = 0
    tie: int = 0

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(
            self.agree + other.agree, self.disagree + other.disagree, self.tie + other.tie
        )

    @property
    def pairs(self) -> int:
        return self.agree + self.disagree + self.tie

    @property
    def rate(self) -> float | None:
        """Share of pairs where the judge prefers the passing answer (None: no pairs)."""
        return self.agree / self.pairs if self.pairs else None


FAILING = ("fail", "timeout", "memory", "output_limit")


def execution_agreement(record: Judgments, statuses: Mapping[str, str] | None = None) -> Agreement:
    """Judge against execution on every (passing, failing) pair of the task.

    ``statuses`` maps attempt id to verdict status; default: the statuses recorded
    in the judgment. ``sandbox_error`` and unknown statuses are left out.
    """
    status = statuses if statuses is not None else _statuses(record)
    means = mean_ratings(record)
    passing = [means[a] for a in record.attempt_ids if status.get(a) == "pass"]
    failing = [means[a] for a in record.attempt_ids if status.get(a) in FAILING]
    agree = disagree = tie = 0
    for p in passing:
        for f in failing:
            if p is None or f is None:
                continue
            if p > f:
                agree += 1
            elif p < f:
                disagree += 1
            else:
                tie += 1
    return Agreement(agree, disagree, tie)


def rating_counts(records: Iterable[Judgments]) -> dict[str, Counter[float]]:
    """Preference -> how many judged answers got each rating (missing ones not counted)."""
    counts: dict[str, Counter[float]] = {}
    for record in records:
        for entry in record.ratings:
            for preference, value in entry.get("ratings", {}).items():
                counter = counts.setdefault(preference, Counter())
                if value is not None:
                    counter[float(value)] += 1
    return counts


def ratings_row(
    record: Judgments, instruction: str, candidates: Sequence[Candidate]
) -> dict[str, Any]:
    """One row of the export's ``ratings`` config, in UltraFeedback's shape.

    ``completions`` holds every judged answer (sample order) with its response,
    verdict status and, per preference, ``{"rating": float | None, "rationale": str}``.
    Answers missing from ``candidates`` get an empty response (the caller joins the
    attempts; nothing is invented).
    """
    by_id = {c.attempt_id: c for c in candidates}
    completions = []
    recorded = _statuses(record)
    for attempt_id in record.attempt_ids:
        status = recorded[attempt_id]
        entry = _entry(record, attempt_id) or {}
        ratings = entry.get("ratings", {})
        rationales = entry.get("rationales", {})
        cand = by_id.get(attempt_id)
        completions.append(
            {
                "attempt_id": attempt_id,
                "response": cand.response if cand else "",
                "status": cand.status if cand and cand.status else status,
                "annotations": {
                    p: {"rating": ratings.get(p), "rationale": rationales.get(p, "")}
                    for p in record.preferences
                },
                "mean_rating": entry.get("mean_rating"),
            }
        )
    return {
        "task_id": record.task_id,
        "instruction": instruction,
        "judge_model": record.judge_model,
        "preferences": list(record.preferences),
        "completions": completions,
    }
