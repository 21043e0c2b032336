"""The export's ``ratings`` config and the judge's part of the card.

One row per task of the data set that the judge rated, in UltraFeedback's shape:
the instruction, the judged answers (``completions``), and for each answer and each
coding preference a rating and the judge's rationale (reward modelling reads this).
Only tasks of the final data set are exported, so the rows inherit its
decontamination and dedup, as the pairs do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from selfalign.curate.candidates import TaskGroup, load_groups
from selfalign.judge.ratings import Agreement, execution_agreement, rating_counts, ratings_row
from selfalign.judge.rubrics import PREFERENCES
from selfalign.judge.stage import candidates
from selfalign.records import Judgments
from selfalign.store import RunDir


def judged(run: RunDir) -> bool:
    """Whether the run has a complete judge stage (then the export has a ratings config)."""
    return run.stage("judgments").is_complete()


def ratings_rows(run: RunDir, task_ids: set[str]) -> tuple[list[dict[str, Any]], list[Judgments]]:
    """The ratings rows of the data set's tasks, and the judgments they came from."""
    groups, _ = load_groups(run)
    rows: list[dict[str, Any]] = []
    records: list[Judgments] = []
    for group in groups:
        if group.task_id in task_ids and group.judgment is not None:
            rows.append(_row(group, group.judgment))
            records.append(group.judgment)
    return rows, records


def _row(group: TaskGroup, record: Judgments) -> dict[str, Any]:
    row = ratings_row(record, group.instruction, candidates(group))
    # A fixed schema: every preference appears, unrated ones with a null rating.
    for completion in row["completions"]:
        given = completion["annotations"]
        completion["annotations"] = {
            p: {
                "rating": _float(given.get(p, {}).get("rating")),
                "rationale": str(given.get(p, {}).get("rationale") or ""),
            }
            for p in PREFERENCES
        }
        completion["mean_rating"] = _float(completion.get("mean_rating"))
        completion["status"] = str(completion.get("status") or "")
    row["preferences"] = [str(p) for p in row["preferences"]]
    return row


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def ratings_features() -> Any:
    """``datasets.Features`` of the ratings config."""
    from datasets import Features, List, Value

    annotation = {"rating": Value("float64"), "rationale": Value("string")}
    completion = {
        "attempt_id": Value("string"),
        "response": Value("string"),
        "status": Value("string"),
        "annotations": {p: annotation for p in PREFERENCES},
        "mean_rating": Value("float64"),
    }
    return Features(
        {
            "task_id": Value("string"),
            "instruction": Value("string"),
            "judge_model": Value("string"),
            "preferences": List(Value("string")),
            "completions": List(completion),
        }
    )


def ratings_side_features() -> dict[str, Any]:
    """The struct of a pair side's ``chosen_ratings`` / ``rejected_ratings``."""
    from datasets import Value

    return {name: Value("float64") for name in (*PREFERENCES, "mean")}


def side_row(ratings: dict[str, Any] | None) -> dict[str, float | None]:
    """A pair side's ratings with every preference and the mean present (null: unrated)."""
    ratings = ratings or {}
    return {name: _float(ratings.get(name)) for name in (*PREFERENCES, "mean")}


def judge_summary(records: list[Judgments]) -> dict[str, Any]:
    """The card's judge numbers: the rating distribution per preference, the agreement
    between the judge and execution, the rejected judgments by reason, the judge model."""
    counts = rating_counts(records)
    agreement = sum((execution_agreement(r) for r in records), Agreement())
    rejected: Counter[str] = Counter(str(r.get("reason")) for rec in records for r in rec.rejected)
    models = sorted({r.judge_model for r in records})
    return {
        "tasks": len(records),
        "models": models,
        "rating_counts": {
            p: {f"{k:g}": n for k, n in sorted(counts.get(p, Counter()).items())}
            for p in PREFERENCES
            if p in counts
        },
        "agreement": {
            "agree": agreement.agree,
            "disagree": agreement.disagree,
            "tie": agreement.tie,
            "rate": agreement.rate,
        },
        "rejected_judgments": dict(sorted(rejected.items())),
    }
