"""Generation benchmark: pipeline overhead of a stage, and tokens/s by batch size.

1. Overhead: the S→C stage (`run_named(run, "concepts")`: reading seeds, rendering prompts,
   parsing, writing shards and stats) against calling the backend directly on the
   same prompts with the same batch size. Greedy decoding, so both do the same
   work. Goal: the pipeline adds under 10%.
2. Throughput: generated tokens per second of the transformers backend at engine
   batch sizes 1, 4 and 16.

    .venv/bin/python benchmarks/generation.py [--seeds 8] [--sequences 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selfalign.generation.config import ConceptsConfig
from selfalign.generation.prompts import PromptBuilder
from selfalign.llm.base import SamplingParams
from selfalign.llm.config import ModelConfig
from selfalign.llm.transformers_backend import TransformersLLM
from selfalign.pipeline import run_named
from selfalign.records import Seed, stable_id
from selfalign.store import RunDir

SNIPPETS = [
    ('def mean(xs):\n    """Average of a list."""\n    return sum(xs) / len(xs)'),
    ('def words(s):\n    """Split s into lowercase words."""\n    return s.lower().split()'),
    ('def fact(n):\n    """n factorial."""\n    return 1 if n < 2 else n * fact(n - 1)'),
    (
        'def uniq(xs):\n    """Items of xs without repeats, in order."""\n'
        "    seen = set()\n    return [x for x in xs if not (x in seen or seen.add(x))]"
    ),
]


def make_run(path: Path, count: int) -> RunDir:
    run = RunDir(path)
    rows = []
    for i in range(count):
        code = SNIPPETS[i % len(SNIPPETS)] + f"\n# variant {i}"
        rows.append(Seed(id=stable_id("seed", code), parent_id=None, code=code).to_dict())
    store = run.stage("seeds")
    store.dir.mkdir(parents=True, exist_ok=True)
    store.commit_batch(rows, 0)
    store.compact()
    store.mark_success()
    return run


def overhead(
    llm: TransformersLLM, model: ModelConfig, seeds: int, batch: int
) -> tuple[float, float, int]:
    cfg = ConceptsConfig(batch_size=batch, num_fewshot=2, max_tokens=32, temperature=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "run", seeds)
        rows = list(run.stage("seeds").read())
        builder = PromptBuilder.load(
            "concepts", cfg.prompts_dir, num_fewshot=cfg.num_fewshot, mode=model.mode, seed=cfg.seed
        )
        params = cfg.sampling(extra_stop=builder.stop)
        prompts = [builder.concepts(r["id"], r["code"], "python") for r in rows]
        llm.generate(prompts[:1], SamplingParams(temperature=0, max_tokens=2))  # warm-up
        start = time.perf_counter()
        tokens = 0
        for i in range(0, len(prompts), batch):
            out = llm.generate(prompts[i : i + batch], params)
            tokens += sum(g.completion_tokens for row in out for g in row)
        direct = time.perf_counter() - start
        start = time.perf_counter()
        stats = run_named(run, "concepts", {"model": model, "concepts": cfg}, llm=llm)
        stage = time.perf_counter() - start
        assert stats.metrics["generated_tokens"] == tokens, "stage and direct runs differ"
    return direct, stage, tokens


def throughput(
    llm: TransformersLLM, sequences: int, max_tokens: int, batch: int
) -> tuple[float, int]:
    llm.engine_batch_size = batch
    prompt = [{"role": "user", "content": "Write a Python function that merges two sorted lists."}]
    params = SamplingParams(temperature=0.8, max_tokens=max_tokens, n=sequences, seed=0)
    start = time.perf_counter()
    out = llm.generate([prompt], params)
    seconds = time.perf_counter() - start
    return seconds, sum(g.completion_tokens for g in out[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds in the overhead run")
    parser.add_argument("--batch-size", type=int, default=4, help="records per stage batch")
    parser.add_argument("--sequences", type=int, default=16, help="sequences per throughput run")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens per throughput sequence")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--batches", default="1,4,16", help="engine batch sizes to measure")
    args = parser.parse_args()
    console = Console()
    model = ModelConfig(device=args.device, engine_batch_size=args.batch_size)
    llm = TransformersLLM.from_config(model)

    direct, stage, tokens = overhead(llm, model, args.seeds, args.batch_size)
    table = Table(
        title=f"S→C stage vs direct backend calls ({args.seeds} seeds, "
        f"batch {args.batch_size}, {tokens} tokens, greedy)"
    )
    for col in ("path", "seconds", "tok/s", "overhead"):
        table.add_column(col, justify="right" if col != "path" else "left")
    table.add_row("backend.generate", f"{direct:.2f}", f"{tokens / direct:.1f}", "")
    table.add_row(
        "concepts stage",
        f"{stage:.2f}",
        f"{tokens / stage:.1f}",
        f"{100 * (stage - direct) / direct:+.1f}% (goal < 10%)",
    )
    console.print(table)

    table = Table(
        title=f"transformers backend on {args.device}: {args.sequences} sequences x "
        f"{args.max_tokens} tokens"
    )
    for col in ("engine batch", "seconds", "tokens", "tok/s"):
        table.add_column(col, justify="right")
    for batch in (int(b) for b in args.batches.split(",")):
        seconds, generated = throughput(llm, args.sequences, args.max_tokens, batch)
        table.add_row(str(batch), f"{seconds:.2f}", str(generated), f"{generated / seconds:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
