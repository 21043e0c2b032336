"""The generic stage runner: batching, resume, stats, rejections and progress for every stage.

A stage supplies a stream of input records and a function that turns one batch
of inputs into outputs and rejections. The runner gives it everything else:

* resume: inputs whose id is already the parent of a written output, or already
  rejected, are skipped; a killed run loses at most the batch in flight;
* one atomic shard per batch, compacted into ``part-NNNNN.jsonl`` when the stage ends;
* ``stats.json`` after every batch, ``rejected/<stage>.jsonl`` for every drop;
* a progress sink (the CLI passes a rich progress bar; library callers pass nothing);
* Ctrl-C: the batch in flight is dropped whole, the counters are saved, and the
  ``KeyboardInterrupt`` propagates. Running the same command again resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from selfalign.records import Record
from selfalign.store import (
    CORRUPT_LINE,
    DUPLICATE_ID,
    Rejection,
    RunDir,
    StageStats,
    StageStore,
    count_reasons,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ProgressSink(Protocol):
    """Where a running stage reports progress. The CLI implements it with rich."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None: ...

    def advance(self, n: int = 1, **metrics: float) -> None: ...

    def stop(self) -> None: ...


class NullProgress:
    """A progress sink that shows nothing (library use, tests)."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        logger.info("%s: starting (%s to do, %d done already)", description, total, completed)

    def advance(self, n: int = 1, **metrics: float) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass
class BatchResult:
    """What a stage's batch function returns for one batch of inputs."""

    outputs: list[Record | dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    """Additive numbers summed into ``stats.metrics`` (e.g. ``generated_tokens``)."""


def _as_dict(record: Record | dict[str, Any]) -> dict[str, Any]:
    return record.to_dict() if isinstance(record, Record) else record


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class ResumeState:
    """What a stage already did in earlier runs, read back from its files."""

    done_inputs: set[str]
    written_ids: set[str]
    stats: StageStats


def load_resume_state(store: StageStore) -> ResumeState:
    """Repair the stage's files after a crash and work out what is already done."""
    store.remove_temporaries()
    corrupt = store.repair()
    if corrupt:
        store.append_rejections(
            Rejection(
                id=f"{c.path}:{c.line_number}",
                reason=CORRUPT_LINE,
                record={"text": c.text},
                detail=c.error,
            )
            for c in corrupt
        )
    done: set[str] = set()
    written: set[str] = set()
    for record in store.read():
        written.add(str(record.get("id")))
        parent = record.get("parent_id")
        if isinstance(parent, str):
            done.add(parent)
    rejected = list(store.read_rejected())
    for row in rejected:
        if row.get("reason") != CORRUPT_LINE:
            done.add(str(row.get("id")))
    previous = store.load_stats()
    stats = StageStats(
        stage=store.stage,
        read=len(done),
        written=len(written),
        dropped=dict(count_reasons(rejected)),
        seconds=previous.seconds,
        runs=previous.runs,
        metrics=dict(previous.metrics),
    )
    return ResumeState(done_inputs=done, written_ids=written, stats=stats)


def run_stage(
    run: RunDir,
    stage: str,
    inputs: Iterable[T],
    process: Callable[[list[T]], BatchResult],
    *,
    input_id: Callable[[T], str],
    batch_size: int,
    total: int | None = None,
    progress: ProgressSink | None = None,
    force: bool = False,
    finalize: Callable[[StageStore, StageStats], None] | None = None,
) -> StageStats:
    """Run one stage over ``inputs`` into ``run/<stage>``, resuming where an earlier run stopped.

    ``process`` receives batches of at most ``batch_size`` inputs that are not done
    yet and returns their outputs and rejections. Every output's ``parent_id`` must
    be the id of the input that produced it (that is how resume knows the input is
    done). ``finalize`` runs once after the last batch, for whole-stage work such as
    dedup; it may append rejections and rewrite shards through the store.

    A stage that is already complete is not run again unless ``force`` is set.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    sink: ProgressSink = progress or NullProgress()
    store = run.stage(stage)
    if force:
        store.reset()
    elif store.is_complete():
        logger.info("%s: already complete; pass --force to run it again", stage)
        stats = store.load_stats()
        stats.complete = True
        return stats
    run.ensure()
    state = load_resume_state(store)
    stats = state.stats
    stats.runs += 1
    stats.complete = False
    started = time.monotonic()
    seconds_before = stats.seconds
    batch_index = store.next_batch_index()
    pending = (item for item in inputs if input_id(item) not in state.done_inputs)
    sink.start(stage, total, min(len(state.done_inputs), total) if total is not None else 0)
    try:
        for batch in batched(pending, batch_size):
            result = process(batch)
            outputs: list[dict[str, Any]] = []
            rejections = list(result.rejections)
            for out in map(_as_dict, result.outputs):
                rid = str(out.get("id"))
                if rid in state.written_ids:
                    rejections.append(Rejection(id=rid, reason=DUPLICATE_ID, record=out))
                    continue
                state.written_ids.add(rid)
                outputs.append(out)
            if outputs:
                store.commit_batch(outputs, batch_index)
                batch_index += 1
            store.append_rejections(rejections)
            stats.read += len(batch)
            stats.written += len(outputs)
            for rejection in rejections:
                stats.dropped[rejection.reason] = stats.dropped.get(rejection.reason, 0) + 1
            for key, value in result.metrics.items():
                stats.metrics[key] = stats.metrics.get(key, 0) + value
            stats.seconds = seconds_before + time.monotonic() - started
            store.write_stats(stats)
            sink.advance(len(batch), **result.metrics)
        if finalize is not None:
            finalize(store, stats)
        store.compact()
        stats.seconds = seconds_before + time.monotonic() - started
        stats.complete = True
        store.write_stats(stats)
        store.mark_success()
    except BaseException:
        # The batch in flight was never committed; save the counters so far.
        stats.seconds = seconds_before + time.monotonic() - started
        store.write_stats(stats)
        raise
    finally:
        sink.stop()
    logger.info(
        "%s: read %d, wrote %d, dropped %d in %.1fs",
        stage,
        stats.read,
        stats.written,
        stats.dropped_total,
        stats.seconds,
    )
    return stats
