"""Seeds stage throughput on the standard library, and batched MinHash against datasketch.

Prints two tables:

1. per phase: functions handled and functions per second (extraction + cheap
   filters, exact dedup + decontamination, pyright, near-dedup), pyright's share
   of the stage, and the ratio of the whole stage's wall time to pyright alone
   over the same functions (same batch size and worker count). Goal: close to 1.
2. MinHash signatures per second: ``selfalign.dedup.minhash_signatures`` against a
   plain per-document ``MinHash.update`` loop and ``MinHash.bulk``. Goal: >= 5x.

Usage: ``python benchmarks/seeds.py [--source stdlib] [--limit 0]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np
from datasketch import MinHash
from rich.console import Console
from rich.table import Table

from selfalign.dedup import minhash_signatures, shingles
from selfalign.pipeline import run_named
from selfalign.seeds.config import SeedsConfig
from selfalign.seeds.stage import PYRIGHT, PYRIGHT_TIMEOUT, funnel, typecheck_source
from selfalign.seeds.typecheck import typecheck
from selfalign.store import RunDir


def _rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (pyright)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stage_table(source: str, limit: int, batch_size: int) -> tuple[Table, list[str]]:
    cfg = SeedsConfig(source=source, limit=limit, batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="selfalign-bench-") as tmp:
        run = RunDir(tmp)
        started, cpu_started = time.perf_counter(), _cpu()
        stats = run_named(run, "seeds", {"seeds": cfg})
        wall, cpu = time.perf_counter() - started, _cpu() - cpu_started
        seeds = list(run.stage("seeds").read())
        rejected = list(run.stage("seeds").read_rejected())
    rows = dict(funnel(stats))
    m = stats.metrics
    checked = [typecheck_source(s["imports"], s["code"]) for s in seeds]
    checked += [
        typecheck_source(r["record"].get("imports", []), r["record"]["code"])
        for r in rejected
        # Everything pyright saw: what it failed, and what passed it but a later step dropped.
        if r["reason"] in (PYRIGHT, PYRIGHT_TIMEOUT, "near_duplicate", "over_limit")
    ]
    alone_started, alone_cpu_started = time.perf_counter(), _cpu()
    typecheck(
        checked,
        batch_size=cfg.pyright_batch_size,
        workers=cfg.pyright_workers,
        timeout_s=cfg.pyright_timeout_s,
    )
    alone = time.perf_counter() - alone_started
    alone_cpu = _cpu() - alone_cpu_started

    table = Table(title=f"seeds stage on {source} ({stats.read} files, {wall:.1f}s wall)")
    for column in ("phase", "functions in", "seconds", "functions/s", "share of stage"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    phases = [
        ("read + tree-sitter + cheap filters", rows["functions"], m["seconds_extract_filter"]),
        ("exact dedup + decontamination", rows["after todo_words"], m["seconds_dedup_decontam"]),
        ("pyright (pool)", m.get("n_pyright_checked", 0), m["seconds_pyright"]),
        ("near dedup (finalize)", rows["after pyright"], m["seconds_near_dedup"]),
    ]
    for name, count, seconds in phases:
        table.add_row(
            name, f"{count:,.0f}", f"{seconds:.2f}", _rate(count, seconds), f"{seconds / wall:.0%}"
        )
    table.add_row(
        "whole stage",
        f"{rows['functions']:,}",
        f"{wall:.2f}",
        _rate(rows["functions"], wall),
        "100%",
    )
    table.add_row(
        "pyright alone, same functions",
        f"{len(checked):,}",
        f"{alone:.2f}",
        _rate(len(checked), alone),
        "",
    )
    table.add_row("stage / pyright alone (wall)", "", f"{wall / alone:.2f}x", "", "")
    # CPU time is the fairer ratio on a shared machine, where wall time swings with load.
    table.add_row(
        "stage / pyright alone (CPU)",
        "",
        f"{cpu:.1f}/{alone_cpu:.1f} = {cpu / alone_cpu:.2f}x",
        "",
        "",
    )
    texts = [s["code"] for s in seeds] + [
        r["record"]["code"] for r in rejected if "code" in r["record"]
    ]
    return table, texts


def minhash_table(texts: list[str], num_perm: int = 250, ngram: int = 5) -> Table:
    """Signatures per second from raw texts: both sides shingle the text themselves."""
    started = time.perf_counter()
    for text in texts:
        m = MinHash(num_perm=num_perm, seed=1)
        for gram in shingles(text, ngram):
            m.update(gram.encode("utf-8"))
    t_loop = time.perf_counter() - started

    started = time.perf_counter()
    MinHash.bulk(
        ([g.encode("utf-8") for g in shingles(t, ngram)] for t in texts), num_perm=num_perm, seed=1
    )
    t_bulk = time.perf_counter() - started

    started = time.perf_counter()
    ours = minhash_signatures(texts, num_perm, ngram)
    t_ours = time.perf_counter() - started

    started = time.perf_counter()
    ours2 = minhash_signatures(texts, num_perm, ngram, workers=2)
    t_ours2 = time.perf_counter() - started
    assert np.array_equal(ours, ours2)

    table = Table(
        title=f"MinHash signatures, {len(texts)} functions, {num_perm} perms, word {ngram}-grams"
    )
    for column in ("method", "seconds", "signatures/s", "vs update loop"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, seconds in (
        ("datasketch MinHash.update loop", t_loop),
        ("datasketch MinHash.bulk", t_bulk),
        ("selfalign batched numpy (1 process)", t_ours),
        ("selfalign batched numpy (2 processes)", t_ours2),
    ):
        table.add_row(
            name, f"{seconds:.3f}", _rate(len(texts), seconds), f"{t_loop / seconds:.1f}x"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="stdlib")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=SeedsConfig().batch_size,
        help="source files per stage batch (each batch is one pyright round)",
    )
    args = parser.parse_args()
    console = Console()
    table, texts = stage_table(args.source, args.limit, args.batch_size)
    console.print(table)
    console.print(minhash_table(texts))


if __name__ == "__main__":
    main()
