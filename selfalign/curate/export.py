"""Export (stage ``export``): the publishable data set, its card and plots, in ``RUN/dataset/``.

``RUN/dataset/`` holds exactly what one pushes to the Hugging Face Hub::

    RUN/dataset/README.md        dataset card (YAML metadata with `configs:` sft and pairs)
    RUN/dataset/sft.parquet      TRL conversational: messages + metadata columns
    RUN/dataset/sft.jsonl
    RUN/dataset/pairs.parquet    TRL preference: prompt / chosen / rejected + verdicts, ratings
    RUN/dataset/pairs.jsonl
    RUN/dataset/ratings.parquet  UltraFeedback shape: instruction, completions, per-preference
    RUN/dataset/ratings.jsonl    ratings and rationales (when the judge stage ran)
    RUN/dataset/plots/*.png      funnel, pass rates, response lengths

``datasets.load_dataset("RUN/dataset", "sft")`` (and ``"pairs"``) and TRL's CLIs
(``--dataset_name RUN/dataset``) read it through the card's ``configs``. The stage's
own bookkeeping stays out of it, in ``RUN/export/`` (``stats.json``, whose metrics
are every number the card shows, and ``_SUCCESS``). The folder is built next to
its final place and swapped in whole, so readers see the previous export or the new one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfalign.curate.card import render_card
from selfalign.curate.config import ExportConfig
from selfalign.curate.ratings_export import (
    judge_summary,
    judged,
    ratings_features,
    ratings_rows,
    ratings_side_features,
    side_row,
)
from selfalign.stage import (
    BatchResult,
    FunnelRow,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
)
from selfalign.store import RunDir, StageStats, StageStore

logger = logging.getLogger(__name__)

STAGE_NAME = "export"
DATASET_DIR = "dataset"
"""``RUN/dataset``: the publishable folder the export stage writes."""
SFT_COLUMNS = (
    "id",
    "messages",
    "seed_id",
    "task_id",
    "attempt_id",
    "concepts",
    "category",
    "difficulty",
    "language",
    "tests",
    "solution",
    "pass_count",
    "attempt_count",
    "checks",
)
VERDICT_KEYS = ("id", "status", "exception", "exit_code", "duration_s")
DEDUP_PREFIXES = ("duplicate_", "near_duplicate_")


@dataclass
class ExportPaths:
    """Where export writes each file (see the module docstring)."""

    root: Path

    @property
    def sft_jsonl(self) -> Path:
        return self.root / "sft.jsonl"

    @property
    def pairs_jsonl(self) -> Path:
        return self.root / "pairs.jsonl"

    @property
    def sft_parquet(self) -> Path:
        return self.root / "sft.parquet"

    @property
    def pairs_parquet(self) -> Path:
        return self.root / "pairs.parquet"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"



def export_paths(path: str | os.PathLike[str]) -> ExportPaths:
    """The data set folder of a run, given ``RUN`` or ``RUN/dataset`` itself."""
    p = Path(path)
    if (p / "README.md").is_file() and (p / "sft.jsonl").is_file():
        return ExportPaths(p)
    if (p / DATASET_DIR).is_dir() or p.name != DATASET_DIR:
        return ExportPaths(p / DATASET_DIR)
    return ExportPaths(p)


@dataclass
class ExportResult:
    """What ``export`` wrote: the paths and the summary (also saved as ``stats.json``)."""

    paths: ExportPaths
    summary: dict[str, Any]


def sft_row(example: dict[str, Any]) -> dict[str, Any]:
    """One row of the SFT config from an Example record."""
    row = {name: example.get(name) for name in SFT_COLUMNS}
    row["messages"] = [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
        for m in example.get("messages") or []
    ]
    row["concepts"] = [str(c) for c in example.get("concepts") or []]
    for name in ("pass_count", "attempt_count", "checks"):
        row[name] = int(row[name] or 0)
    for name in SFT_COLUMNS:
        if row[name] is None:
            row[name] = ""
    return row


def _verdict(data: dict[str, Any] | None) -> dict[str, Any]:
    data = data or {}
    return {
        "id": str(data.get("id", "")),
        "status": str(data.get("status", "")),
        "exception": str(data.get("exception") or ""),
        "exit_code": int(data["exit_code"]) if data.get("exit_code") is not None else -1,
        "duration_s": float(data.get("duration_s") or 0.0),
    }


def pair_row(pair: dict[str, Any]) -> dict[str, Any]:
    """One row of the pairs config (TRL conversational preference format) from a PreferencePair."""
    return {
        "id": str(pair.get("id", "")),
        "prompt": [{"role": "user", "content": str(pair.get("prompt", ""))}],
        "chosen": [{"role": "assistant", "content": str(pair.get("chosen", ""))}],
        "rejected": [{"role": "assistant", "content": str(pair.get("rejected", ""))}],
        "task_id": str(pair.get("task_id", "")),
        "seed_id": str(pair.get("seed_id", "")),
        "category": str(pair.get("category", "")),
        "difficulty": str(pair.get("difficulty", "")),
        "chosen_attempt_id": str(pair.get("chosen_attempt_id", "")),
        "rejected_attempt_id": str(pair.get("rejected_attempt_id", "")),
        "chosen_status": str(pair.get("chosen_status", "")),
        "rejected_status": str(pair.get("rejected_status", "")),
        "preference_source": str(pair.get("preference_source", "")),
        "chosen_verdict": _verdict(pair.get("chosen_verdict")),
        "rejected_verdict": _verdict(pair.get("rejected_verdict")),
        "chosen_ratings": side_row(pair.get("chosen_ratings")),
        "rejected_ratings": side_row(pair.get("rejected_ratings")),
    }


def features() -> dict[str, Any]:
    """Explicit ``datasets.Features`` of both configs (an empty config keeps its schema)."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    verdict = {
        "id": Value("string"),
        "status": Value("string"),
        "exception": Value("string"),
        "exit_code": Value("int64"),
        "duration_s": Value("float64"),
    }
    text = Value("string")
    sft = Features(
        {
            "id": text,
            "messages": List(message),
            "seed_id": text,
            "task_id": text,
            "attempt_id": text,
            "concepts": List(text),
            "category": text,
            "difficulty": text,
            "language": text,
            "tests": text,
            "solution": text,
            "pass_count": Value("int64"),
            "attempt_count": Value("int64"),
            "checks": Value("int64"),
        }
    )
    pairs = Features(
        {
            "id": text,
            "prompt": List(message),
            "chosen": List(message),
            "rejected": List(message),
            "task_id": text,
            "seed_id": text,
            "category": text,
            "difficulty": text,
            "chosen_attempt_id": text,
            "rejected_attempt_id": text,
            "chosen_status": text,
            "rejected_status": text,
            "preference_source": text,
            "chosen_verdict": verdict,
            "rejected_verdict": verdict,
            "chosen_ratings": ratings_side_features(),
            "rejected_ratings": ratings_side_features(),
        }
    )
    return {"sft": sft, "pairs": pairs, "ratings": ratings_features()}


def _dataset(rows: list[dict[str, Any]], feats: Any) -> Any:
    from datasets import Dataset

    if rows:
        return Dataset.from_list(rows, features=feats)
    return Dataset.from_dict({name: [] for name in feats}, features=feats)


def _read_config(run: RunDir) -> tuple[dict[str, Any], str]:
    if not run.config_path.is_file():
        return {}, ""
    text = run.config_path.read_text("utf-8")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError:
        return {}, text


def _holds_tests(row: dict[str, Any]) -> bool:
    assistant = next((m["content"] for m in row["messages"] if m["role"] == "assistant"), "")
    tests = str(row.get("tests") or "").strip()
    return bool(tests) and tests in assistant


def build_summary(
    run: RunDir,
    cfg: ExportConfig,
    funnel: list[FunnelRow],
    sft: list[dict[str, Any]],
    pairs: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every number the card shows: funnel, pass rates, removals, lengths, configuration.

    ``funnel`` holds the rows of the stages before export, each read from its stats.json.
    """
    config, config_text = _read_config(run)
    earlier_contaminated = sum(
        n
        for row in funnel
        if row.stage not in ("examples", "pairs")
        for r, n in row.reasons.items()
        if "contam" in r
    )
    verdict_metrics = run.stage("verdicts").load_stats().metrics
    dataset_stats = run.stage("examples").load_stats()
    removed = dict(sorted(dataset_stats.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
    select_cfg = config.get("select", {})
    model_cfg = config.get("model", {})
    sandbox_cfg = config.get("sandbox", {})
    lengths = [
        len(next((m["content"] for m in row["messages"] if m["role"] == "assistant"), ""))
        for row in sft
    ]
    execution_keys = (
        "attempts",
        "passed",
        "executable",
        "pass_rate",
        "executable_rate",
        "tasks",
        "tasks_with_pass",
        "by_status",
        "by_category",
        "by_difficulty",
        "by_parse_outcome",
    )
    execution = {
        k: verdict_metrics.get(k, {} if k.startswith("by_") else 0) for k in execution_keys
    }
    return {
        "pretty_name": cfg.pretty_name,
        "license": cfg.license,
        "sft_rows": len(sft),
        "pairs_rows": len(pairs),
        "sft_rows_with_tests_in_answer": sum(_holds_tests(row) for row in sft),
        "funnel": [row.to_dict() for row in funnel],
        "strength": verdict_metrics.get("strength") or {},
        "execution": execution,
        "selection": {
            "removed": removed,
            "dedup_total": sum(n for r, n in removed.items() if r.startswith(DEDUP_PREFIXES)),
            "decontamination_total": removed.get("contaminated", 0),
            "benchmark_files": list(select_cfg.get("benchmark_files", [])),
            "minhash": {
                "num_perm": select_cfg.get("minhash_num_perm", 250),
                "threshold": select_cfg.get("minhash_threshold", 0.7),
                "ngram": select_cfg.get("minhash_ngram", 5),
            },
        },
        "decontamination_earlier": earlier_contaminated,
        "pairs_by_source": dict(sorted(_count(p["preference_source"] for p in pairs).items())),
        "pairs_by_rejected_status": dict(
            sorted(_count(p["rejected_status"] for p in pairs).items())
        ),
        "sft_by_category": dict(sorted(_count(r["category"] for r in sft).items())),
        "sft_by_difficulty": dict(sorted(_count(r["difficulty"] for r in sft).items())),
        "response_chars": {
            "mean": round(statistics.fmean(lengths), 1) if lengths else 0,
            "median": statistics.median(lengths) if lengths else 0,
            "max": max(lengths, default=0),
        },
        "generation": {
            "model": model_cfg.get("model", "unknown"),
            "backend": model_cfg.get("backend", "unknown"),
            "seeds_source": config.get("seeds", {}).get("source", "unknown"),
            "sandbox": sandbox_cfg.get("backend", "docker"),
            "pick": select_cfg.get("pick", "random"),
        },
        "config": config,
        "config_toml": config_text,
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def local_data_files(configs: list[str]) -> dict[str, str]:
    """The card's ``configs`` paths inside the export folder."""
    return {name: f"{name}.parquet" for name in configs}


def hub_data_files(configs: list[str]) -> dict[str, str]:
    """The card's ``configs`` paths in a Hub repo written by ``push_to_hub(config_name=...)``."""
    return {name: f"{name}/train-*" for name in configs}


def write_dataset(
    run: RunDir, cfg: ExportConfig, funnel: list[FunnelRow]
) -> tuple[ExportPaths, dict[str, Any]]:
    """Write ``RUN/dataset/`` from the ``examples`` and ``pairs`` stages; return it and the
    summary of every number its card shows."""
    from datasets import Dataset

    paths = ExportPaths(run.path / DATASET_DIR)
    sft = [sft_row(r) for r in run.stage("examples").read()]
    pairs = [pair_row(r) for r in run.stage("pairs").read()]
    tables: dict[str, list[dict[str, Any]]] = {"sft": sft, "pairs": pairs}
    judge: dict[str, Any] | None = None
    if judged(run):
        tables["ratings"], records = ratings_rows(run, {r["task_id"] for r in sft})
        judge = judge_summary(records)
    summary = build_summary(run, cfg, funnel, sft, pairs)
    summary["configs"] = list(tables)
    summary["ratings_rows"] = len(tables.get("ratings", []))
    summary["judge"] = judge
    run.ensure()
    tmp = Path(tempfile.mkdtemp(prefix=".dataset-", dir=run.path))
    try:
        tmp_paths = ExportPaths(tmp)
        feats = features()
        for name, rows in tables.items():
            _write_jsonl(tmp / f"{name}.jsonl", rows)
            data: Dataset = _dataset(rows, feats[name])
            data.to_parquet(str(tmp / f"{name}.parquet"))
        if cfg.plots:
            from selfalign.curate.plots import draw_all

            lengths = [len(r["messages"][-1]["content"]) if r["messages"] else 0 for r in sft]
            draw_all(summary, lengths, tmp_paths.plots)
        card = render_card(summary, local_data_files(list(tables)), cfg.plots)
        tmp_paths.card.write_text(card, "utf-8")
        _swap_in(tmp, paths.root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("export: %d examples, %d pairs in %s", len(sft), len(pairs), paths.root)
    return paths, summary


def _read(ctx: StageContext) -> StageInput:
    # No per-batch work: the whole export happens in finalize, on the driver.
    return StageInput(items=[], item_id=str, total=0)


def _processor(ctx: StageContext) -> Processor:
    return lambda batch: BatchResult()


def _finalize(ctx: StageContext, store: StageStore, stats: StageStats) -> None:
    cfg: ExportConfig = ctx.config("export")
    funnel = [
        stage.funnel_row(ctx.run.stage(stage.name).load_stats())
        for stage in ctx.stages()
        if stage.name != STAGE_NAME and ctx.run.stage(stage.name).stats_path.is_file()
    ]
    paths, summary = write_dataset(ctx.run, cfg, funnel)
    rows = summary["sft_rows"] + summary["pairs_rows"] + summary["ratings_rows"]
    stats.read = rows
    stats.written = rows
    stats.metrics = {"dataset": str(paths.root), **summary}
    if cfg.push_to_hub:
        push_to_hub(paths, summary, cfg)


def _report(stats: StageStats) -> list[Any]:
    from selfalign.curate.cli import export_report

    return export_report(stats)


STAGE = Stage(
    name=STAGE_NAME,
    command="export",
    summary="the publishable RUN/dataset: Parquet and JSONL configs, the dataset card, plots",
    section=Section("export", ExportConfig),
    inputs=("examples", "pairs"),
    optional_inputs=("judgments",),
    record=None,
    read=_read,
    processor=_processor,
    finalize=_finalize,
    units=("rows", "rows"),
    batch_size=lambda cfg: 1,
    distributed=False,
    report=_report,
)


def _swap_in(new: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def push_to_hub(paths: ExportPaths, summary: dict[str, Any], cfg: ExportConfig) -> None:
    """Push both configs and the card (with Hub data paths) to ``cfg.push_to_hub``."""
    from datasets import Dataset
    from huggingface_hub import HfApi

    assert cfg.push_to_hub is not None
    for name, path in local_data_files(summary["configs"]).items():
        data = Dataset.from_parquet(str(paths.root / path))
        assert isinstance(data, Dataset)
        data.push_to_hub(cfg.push_to_hub, config_name=name, split="train", private=cfg.private)
    card = render_card(summary, hub_data_files(summary["configs"]), plots=cfg.plots)
    api = HfApi()
    api.upload_file(
        path_or_fileobj=card.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=cfg.push_to_hub,
        repo_type="dataset",
    )
    if cfg.plots and paths.plots.is_dir():
        api.upload_folder(
            folder_path=str(paths.plots),
            path_in_repo="plots",
            repo_id=cfg.push_to_hub,
            repo_type="dataset",
        )


__all__ = [
    "DATASET_DIR",
    "STAGE",
    "ExportPaths",
    "ExportResult",
    "export_paths",
    "features",
    "pair_row",
    "write_dataset",
    "sft_row",
]
