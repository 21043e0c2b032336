"""The stage runner: batching, resume, stats, rejections and progress, the same for every stage.

A :class:`~selfalign.stage.Stage` says what to read and how to process one batch;
the runner gives it everything else:

* the input check: every input stage complete, or one ``MissingInputError`` naming
  the command to run; an output older than one of its inputs is stale and runs again;
* resume: inputs whose id is already the parent of a written output, or already
  rejected, are skipped; a killed run loses at most the batches in flight;
* one atomic shard per batch, committed in input order by this (the driver's)
  process only, compacted into ``part-NNNNN.jsonl`` when the stage ends;
* ``stats.json`` after every batch, ``rejected/<stage>.jsonl`` for every drop;
* a progress sink (the CLI passes a rich progress bar; library callers pass nothing);
* Ctrl-C: the batches in flight are dropped whole, the counters are saved, and the
  ``KeyboardInterrupt`` propagates. Running the same command again resumes.

Where the batches run is the executor's business (:class:`LocalExecutor` here, the
Ray executor in :mod:`selfalign.executors.ray`); it never knows what a stage does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from selfalign.records import Record
from selfalign.stage import (
    BatchResult,
    MissingInputError,
    NullProgress,
    ProgressSink,
    Stage,
    StageContext,
    StageInput,
)
from selfalign.store import (
    CORRUPT_LINE,
    DUPLICATE_ID,
    Rejection,
    StageStats,
    StageStore,
    count_reasons,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Executor(Protocol):
    """Runs a stage's batches somewhere and yields each batch with its result, in input order."""

    def map(
        self, stage: Stage, ctx: StageContext, batches: Iterator[list[Any]]
    ) -> Iterator[tuple[list[Any], BatchResult]]: ...

    def close(self) -> None:
        """Release what the executor holds (workers, the cluster connection)."""
        ...


class LocalExecutor:
    """Every batch in this process, one after the other."""

    def map(
        self, stage: Stage, ctx: StageContext, batches: Iterator[list[Any]]
    ) -> Iterator[tuple[list[Any], BatchResult]]:
        process = stage.processor(ctx)
        for batch in batches:
            yield batch, process(batch)

    def close(self) -> None:
        return None


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


def producer_command(ctx: StageContext, stage_name: str) -> str:
    """The command that writes ``stage_name`` in this pipeline."""
    for stage in ctx.stages():
        if stage.name == stage_name:
            return stage.command
    return stage_name


def check_inputs(stage: Stage, ctx: StageContext) -> None:
    """Every input stage is complete, or a ``MissingInputError`` says which command to run."""
    for name in stage.inputs:
        store = ctx.run.stage(name)
        if store.is_complete():
            continue
        state = "is incomplete (no _SUCCESS)" if store.exists() else "has not run"
        command = producer_command(ctx, name)
        raise MissingInputError(
            f"{stage.command} needs the {name!r} stage, which {state} in {ctx.run.path}: "
            f"run `selfalign {command} --run {ctx.run.path}` first"
        )


def stale_inputs(stage: Stage, ctx: StageContext) -> list[str]:
    """Input stages that completed after this stage did (its output was made from older data)."""
    store = ctx.run.stage(stage.name)
    mine = store.completed_at()
    if mine is None:
        return []
    newer = []
    for name in stage.inputs:
        theirs = ctx.run.stage(name).completed_at()
        if theirs is not None and theirs > mine:
            newer.append(name)
    return newer


def options_of(stage: Stage, ctx: StageContext) -> dict[str, Any]:
    """The resolved options of every section the stage reads, as plain data."""
    return {
        s.name: json.loads(json.dumps(asdict(ctx.config(s.name)), default=str))
        for s in stage.sections
    }


def _warn_changed_options(stage: Stage, stats: StageStats, now: dict[str, Any]) -> None:
    if not stats.options:
        return
    changed = [
        f"[{section}] {key}"
        for section, values in now.items()
        for key, value in values.items()
        if stats.options.get(section, {}).get(key, value) != value
    ]
    if changed:
        logger.warning(
            "%s is complete but was made with other options (%s); pass --force to run it "
            "again with the new ones",
            stage.name,
            ", ".join(changed[:5]),
        )


def run_stage(
    stage: Stage,
    ctx: StageContext,
    *,
    progress: ProgressSink | None = None,
    executor: Executor | None = None,
) -> StageStats:
    """Run ``stage`` into ``RUN/<stage.name>``, resuming where an earlier run stopped.

    A complete stage is not run again unless ``ctx.force`` is set or one of its inputs
    completed after it (then it runs again from scratch, with a warning).
    """
    sink: ProgressSink = progress or NullProgress()
    store = ctx.run.stage(stage.name)
    if stage.prepare is not None:
        stage.prepare(ctx)
    reset = ctx.force
    if not reset and store.is_complete():
        stale = stale_inputs(stage, ctx)
        if not stale:
            logger.info("%s: already complete; pass --force to run it again", stage.name)
            stats = store.load_stats()
            stats.complete = True
            _warn_changed_options(stage, stats, options_of(stage, ctx))
            return stats
        logger.warning(
            "%s: %s changed since it ran; running it again", stage.name, ", ".join(stale)
        )
        reset = True
    check_inputs(stage, ctx)
    # Reading first: a source that does not exist fails before anything is written.
    source = stage.read(ctx)
    owns_resources = ctx.resources is None
    try:
        if reset:
            store.reset()
        ctx.run.ensure()
        return _run(stage, ctx, store, source, sink, executor or LocalExecutor())
    finally:
        if owns_resources and ctx.resources is not None:
            ctx.resources.close()
            ctx.resources = None


def _run(
    stage: Stage,
    ctx: StageContext,
    store: StageStore,
    source: StageInput,
    sink: ProgressSink,
    executor: Executor,
) -> StageStats:
    state = load_resume_state(store)
    stats = state.stats
    stats.runs += 1
    stats.complete = False
    stats.options = options_of(stage, ctx)
    started = time.monotonic()
    seconds_before = stats.seconds
    batch_index = store.next_batch_index()
    early = [r for r in source.rejections if r.id not in state.done_inputs]
    if early:
        store.append_rejections(early)
        for rejection in early:
            state.done_inputs.add(rejection.id)
            stats.read += 1
            stats.dropped[rejection.reason] = stats.dropped.get(rejection.reason, 0) + 1
    done = state.done_inputs

    def pending() -> Iterator[Any]:
        for item in source.items:
            if stage.stop_when is not None and stage.stop_when(ctx, stats):
                logger.info("%s: stop condition reached; not reading further input", stage.name)
                return
            if source.item_id(item) not in done:
                yield item

    total = source.total
    sink.start(stage.name, total, min(len(done), total) if total is not None else 0)
    try:
        batches = batched(pending(), stage.batch_size_for(ctx))
        for batch, result in executor.map(stage, ctx, batches):
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
        if stage.finalize is not None:
            stage.finalize(ctx, store, stats)
        store.compact()
        stats.seconds = seconds_before + time.monotonic() - started
        stats.complete = True
        store.write_stats(stats)
        store.mark_success()
    except BaseException:
        # The batches in flight were never committed; save the counters so far.
        stats.seconds = seconds_before + time.monotonic() - started
        store.write_stats(stats)
        raise
    finally:
        sink.stop()
    logger.info(
        "%s: read %d, wrote %d, dropped %d in %.1fs",
        stage.name,
        stats.read,
        stats.written,
        stats.dropped_total,
        stats.seconds,
    )
    return stats
