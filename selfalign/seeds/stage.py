"""The seeds stage: source files in, ``Seed`` records out, every drop counted with its reason.

Order of work, cheapest first (see docs/seeds.md):

per batch of files (``run_stage``'s ``process``, one shard per batch)
    read and check the file (size, binary, encoding, empty, generated, syntax)
    extract functions with tree-sitter
    shape and docstring filters, deny-listed imports
    exact duplicates of a seed already kept (whitespace-normalised)
    benchmark decontamination (HumanEval + the user's files)
    pyright over all the batch's survivors at once, in parallel processes

once, after the last batch (``finalize``; needs the whole stage output)
    exact dedup again (a safety net across resumed runs), MinHash near-dedup,
    then the ``limit`` cut; the kept seeds are rewritten as one shard.

A function's drop is a ``Rejection`` with the function's id; a file that yields
no seed at all is also rejected with the file's id (reason ``file_without_seeds``,
or the file-level reason), which is what lets a resumed run skip it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.records import Seed, stable_id
from selfalign.seeds import extract
from selfalign.seeds.config import SeedsConfig
from selfalign.seeds.filters import FILE_REASONS, FUNCTION_REASONS, file_reason, function_reason
from selfalign.seeds.sources import SourceFile, open_source, source_label
from selfalign.stage import BatchResult, Processor, Section, Stage, StageContext, StageInput
from selfalign.store import Rejection, StageStats, StageStore

if TYPE_CHECKING:
    from selfalign.decontam import Decontaminator

logger = logging.getLogger(__name__)

STAGE_NAME = "seeds"
FILE_WITHOUT_SEEDS = "file_without_seeds"
DUPLICATE_EXACT = "duplicate_exact"
NEAR_DUPLICATE = "near_duplicate"
CONTAMINATED = "contaminated"
PYRIGHT = "pyright"
PYRIGHT_TIMEOUT = "pyright_timeout"
OVER_LIMIT = "over_limit"

# Funnel rows: (label, metrics counter). Counters are summed over batches and runs.
FUNNEL = [
    ("files", "n_files"),
    ("files parsed", "n_files_parsed"),
    ("functions", "n_functions"),
    ("with docstring", "n_after_no_docstring"),
    *[(f"after {r}", f"n_after_{r}") for r in FUNCTION_REASONS[1:]],
    ("after exact dedup", "n_after_duplicate_exact"),
    ("after decontamination", "n_after_contaminated"),
    ("after pyright", "n_after_pyright"),
    ("after near dedup", "n_after_near_duplicate"),
    ("seeds", "n_seeds"),
]


def _code_key(code: str) -> str:
    from selfalign.dedup import normalise_whitespace

    return hashlib.sha256(normalise_whitespace(code).encode("utf-8")).hexdigest()


def typecheck_source(seed_imports: list[str], code: str) -> str:
    """The standalone module pyright checks for one function: its imports, then its code."""
    header = "\n".join(seed_imports)
    return f"{header}\n\n\n{code}\n" if header else f"{code}\n"


class SeedHarvester:
    """The per-batch work of the stage; keeps the state that spans batches (exact-dup keys)."""

    def __init__(self, cfg: SeedsConfig, label: str, seen: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.label = label
        self.seen: dict[str, str] = dict(seen or {})
        self.accepted = len(self.seen)
        self.decontaminator: Decontaminator | None = None
        if cfg.decontaminate:
            from selfalign.decontam import Decontaminator

            self.decontaminator = Decontaminator.load(
                humaneval=True,
                benchmark_files=[Path(p) for p in cfg.benchmark_files],
                ngram=cfg.decontam_ngram,
            )

    def process(self, batch: list[SourceFile]) -> BatchResult:
        cfg = self.cfg
        metrics: defaultdict[str, float] = defaultdict(float)
        rejections: list[Rejection] = []
        candidates: list[tuple[SourceFile, extract.Function, str]] = []
        file_outcome: dict[str, str | None] = {}
        clock = time.perf_counter()
        for item in batch:
            metrics["n_files"] += 1
            reason, detail, functions = self._read(item, metrics)
            if reason is not None:
                file_outcome[item.id] = reason
                rejections.append(
                    Rejection(id=item.id, reason=reason, record={"path": item.path}, detail=detail)
                )
                continue
            metrics["n_files_parsed"] += 1
            file_outcome[item.id] = None
            for fn in functions:
                metrics["n_functions"] += 1
                seed_id = stable_id("seed", self.label, item.path, fn.line, fn.code)
                dropped = function_reason(
                    fn,
                    min_lines=cfg.min_lines,
                    max_lines=cfg.max_lines,
                    min_docstring_words=cfg.min_docstring_words,
                    deny_imports=cfg.deny_imports,
                    require_return=cfg.require_return,
                    require_parameters=cfg.require_parameters,
                    reject_todo=cfg.reject_todo,
                )
                passed = FUNCTION_REASONS.index(dropped[0]) if dropped else len(FUNCTION_REASONS)
                for reason in FUNCTION_REASONS[:passed]:
                    metrics[f"n_after_{reason}"] += 1
                if dropped is not None:
                    rejections.append(self._reject(seed_id, dropped[0], dropped[1], item, fn))
                    continue
                candidates.append((item, fn, seed_id))
        metrics["seconds_extract_filter"] += time.perf_counter() - clock

        clock = time.perf_counter()
        survivors = []
        batch_keys: dict[str, str] = {}
        for item, fn, seed_id in candidates:
            key = _code_key(fn.code)
            first = self.seen.get(key) or batch_keys.get(key)
            if first is not None:
                rejections.append(self._reject(seed_id, DUPLICATE_EXACT, first, item, fn))
                continue
            batch_keys[key] = seed_id
            metrics["n_after_duplicate_exact"] += 1
            if self.decontaminator is not None:
                hit = self.decontaminator.match(fn.code)
                if hit is not None:
                    rejections.append(self._reject(seed_id, CONTAMINATED, hit, item, fn))
                    continue
            metrics["n_after_contaminated"] += 1
            survivors.append((item, fn, seed_id, key))
        metrics["seconds_dedup_decontam"] += time.perf_counter() - clock

        clock = time.perf_counter()
        if cfg.typecheck:
            from selfalign.seeds.typecheck import typecheck

            verdicts = typecheck(
                [typecheck_source(fn.imports, fn.code) for _, fn, _, _ in survivors],
                batch_size=cfg.pyright_batch_size,
                workers=cfg.pyright_workers,
                timeout_s=cfg.pyright_timeout_s,
            )
            metrics["n_pyright_checked"] += len(survivors)
        else:
            verdicts = [None] * len(survivors)
        metrics["seconds_pyright"] += time.perf_counter() - clock

        outputs: list[Seed] = []
        for (item, fn, seed_id, key), verdict in zip(survivors, verdicts, strict=True):
            if verdict is not None and verdict.reason is not None:
                rejections.append(self._reject(seed_id, verdict.reason, verdict.detail, item, fn))
                continue
            metrics["n_after_pyright"] += 1
            self.seen[key] = seed_id
            self.accepted += 1
            outputs.append(
                Seed(
                    id=seed_id,
                    parent_id=item.id,
                    code=fn.code,
                    name=fn.qualname,
                    path=item.path,
                    line=fn.line,
                    docstring=fn.docstring or "",
                    imports=fn.imports,
                    source=self.label,
                )
            )
        with_seeds = {seed.parent_id for seed in outputs}
        for file_id, reason in file_outcome.items():
            if reason is None and file_id not in with_seeds:
                path = next(i.path for i in batch if i.id == file_id)
                rejections.append(
                    Rejection(id=file_id, reason=FILE_WITHOUT_SEEDS, record={"path": path})
                )
        counts = {k: (v if k.startswith("seconds") else int(v)) for k, v in metrics.items()}
        return BatchResult(outputs=list(outputs), rejections=rejections, metrics=counts)

    def _read(
        self, item: SourceFile, metrics: defaultdict[str, float]
    ) -> tuple[str | None, str, list[extract.Function]]:
        if item.error is not None:
            return "unreadable", item.error, []
        try:
            data = item.read()
        except OSError as exc:
            return "unreadable", str(exc), []
        reason = file_reason(data, self.cfg.max_file_bytes)
        if reason is not None:
            return reason, "", []
        try:
            tree = extract.parse(data)
            if tree.root_node.has_error:
                return "syntax_error", "", []
            package = ".".join(Path(item.path).parent.parts) or None
            functions = extract.extract_functions(tree, data, self.cfg.include_methods, package)
        except (RecursionError, ValueError, MemoryError) as exc:
            # A pathological file (nesting deeper than the stack, say) costs only itself.
            return "extract_error", f"{type(exc).__name__}: {exc}"[:300], []
        return None, "", functions

    def _reject(
        self, seed_id: str, reason: str, detail: str, item: SourceFile, fn: extract.Function
    ) -> Rejection:
        record: dict[str, Any] = {"name": fn.qualname, "path": item.path, "line": fn.line}
        if reason != "no_docstring":
            record["code"] = fn.code
            record["imports"] = fn.imports
        return Rejection(id=seed_id, reason=reason, record=record, detail=detail)


def _finalize(ctx: StageContext, store: StageStore, stats: StageStats) -> None:
    """Exact dedup again (a safety net across resumed runs), MinHash near-dedup, the limit."""
    from selfalign.dedup import exact_duplicates, near_duplicates

    cfg: SeedsConfig = ctx.config("seeds")
    clock = time.perf_counter()
    records = list(store.read())
    items = [(str(r["id"]), str(r.get("code", ""))) for r in records]
    drops: dict[str, tuple[str, str]] = {
        rid: (DUPLICATE_EXACT, kept) for rid, kept in exact_duplicates(items).items()
    }
    remaining = [item for item in items if item[0] not in drops]
    near = near_duplicates(
        remaining,
        num_perm=cfg.minhash_num_perm,
        threshold=cfg.minhash_threshold,
        ngram=cfg.minhash_ngram,
        workers=cfg.dedup_workers,
        shingles="code",  # a clone with renamed variables and parameters is a duplicate
    )
    drops.update({rid: (NEAR_DUPLICATE, kept) for rid, kept in near.items()})
    kept = [r for r in records if r["id"] not in drops]
    after_near = len(kept)
    if cfg.limit and len(kept) > cfg.limit:
        for record in kept[cfg.limit :]:
            drops[record["id"]] = (OVER_LIMIT, f"limit {cfg.limit}")
        kept = kept[: cfg.limit]
    rejections = [
        Rejection(
            id=str(r["id"]),
            reason=drops[r["id"]][0],
            record={
                "id": r["id"],
                "name": r.get("name"),
                "path": r.get("path"),
                "code": r.get("code"),
            },
            detail=drops[r["id"]][1],
        )
        for r in records
        if r["id"] in drops
    ]
    store.drop(rejections)
    for rejection in rejections:
        stats.dropped[rejection.reason] = stats.dropped.get(rejection.reason, 0) + 1
    stats.written = len(kept)
    metrics = stats.metrics
    metrics["n_after_near_duplicate"] = after_near
    metrics["n_seeds"] = len(kept)
    metrics["seconds_near_dedup"] = time.perf_counter() - clock
    metrics["funnel"] = [[label, int(metrics.get(key, 0))] for label, key in FUNNEL]
    logger.info(
        "seeds: %d exact and %d near duplicates removed; %d seeds",
        sum(1 for d in drops.values() if d[0] == DUPLICATE_EXACT),
        len(near),
        len(kept),
    )


def effective_batch_size(cfg: SeedsConfig) -> int:
    """Files per batch: ``batch_size``, but small enough with ``limit`` not to overshoot it far.

    Big batches make few, well-filled pyright processes; a run that wants 40
    seeds should not read 256 files first. About half of all files yield a seed
    (standard library), so two files per wanted seed is enough for one batch.
    """
    if cfg.limit:
        return max(8, min(cfg.batch_size, 2 * cfg.limit))
    return cfg.batch_size


def _read(ctx: StageContext) -> StageInput:
    cfg: SeedsConfig = ctx.config("seeds")
    source = open_source(cfg.source, cfg.excludes)
    return StageInput(items=source.files, item_id=lambda f: f.id, total=source.total)


def _processor(ctx: StageContext) -> Processor:
    cfg: SeedsConfig = ctx.config("seeds")
    # Seeds an interrupted run already kept: exact duplicates of them are dropped early.
    seen = {
        _code_key(str(record.get("code", ""))): str(record.get("id"))
        for record in ctx.run.stage(STAGE_NAME).read()
    }
    return SeedHarvester(cfg, source_label(cfg.source), seen).process


def _limit_reached(ctx: StageContext, stats: StageStats) -> bool:
    # Checked between batches: the stage stops after the batch that reached the limit
    # (the near-dedup may still remove some, and the limit cut in finalize keeps the first).
    limit = ctx.config("seeds").limit
    return bool(limit) and stats.written >= limit


def _report(stats: StageStats) -> list[Any]:
    from selfalign.seeds.cli import seeds_report

    return seeds_report(stats)


FILE_LEVEL_REASONS = frozenset((*FILE_REASONS, FILE_WITHOUT_SEEDS))


def funnel_counts(stats: StageStats) -> tuple[int, dict[str, int], int]:
    """The seeds row counts functions: extracted, dropped by reason (file-level drops apart:
    they count files), seeds."""
    reasons = {r: n for r, n in stats.dropped.items() if r not in FILE_LEVEL_REASONS}
    return int(stats.metrics.get("n_functions", 0)), reasons, stats.written


def funnel(stats: StageStats) -> list[tuple[str, int]]:
    """The funnel rows (label, count) saved in ``stats.metrics["funnel"]``."""
    rows = stats.metrics.get("funnel") or []
    return [(str(label), int(count)) for label, count in rows]


STAGE = Stage(
    name=STAGE_NAME,
    command="seeds",
    summary="harvest functions with docstrings; pyright; decontamination; exact and MinHash dedup",
    section=Section("seeds", SeedsConfig),
    inputs=(),
    record=Seed,
    read=_read,
    processor=_processor,
    finalize=_finalize,
    units=("functions", "seeds"),
    funnel_counts=funnel_counts,
    batch_size=effective_batch_size,
    stop_when=_limit_reached,
    in_generate=False,
    report=_report,
)

__all__ = ["FILE_REASONS", "FUNNEL", "STAGE", "SeedHarvester", "funnel"]
