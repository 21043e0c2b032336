"""Judge benchmark: tokens per judged response, one call per task against one call per response.

CodeUltraFeedback puts every response of an instruction into one judge call per
preference; the alternative is one call per (response, preference). On the same
attempts and rubrics this measures, per judged response and preference:

1. prompt tokens, counted with the embedded model's tokenizer and chat template
   (the rubric and the instruction are paid once per call, so grouping pays them
   once per task);
2. completion tokens of a judgment that keeps the format (rating plus a 25-word
   rationale per response), a careful count that does not depend on the judge;
3. completion tokens of a real greedy generation by the embedded 135M judge on a
   small set, and how many of its judgments parsed (``--no-generate`` skips this).

    .venv/bin/python benchmarks/judge.py [--gen-tasks 2] [--gen-preferences 1] [--max-tokens 200]

The attempts are the hand-made tasks of tests/judge/fixtures/tasks.json (2-4
answers each), or a run's own with ``--run RUN`` (tasks, attempts and verdicts).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from selfalign.judge.config import JudgeConfig
from selfalign.judge.parse import parse_judgment
from selfalign.judge.prompt import JudgePrompts, cut
from selfalign.judge.rate import Candidate, JudgeTask, choose_candidates
from selfalign.judge.rubrics import PREFERENCES
from selfalign.llm.base import Prompt, chat_template_text

TASKS_FILE = Path(__file__).resolve().parents[1] / "tests" / "judge" / "fixtures" / "tasks.json"
RATIONALE = (
    "The answer meets the stated requirement and names things clearly, but it leaves "
    "one edge case unexplained and repeats a little work inside its main loop."
)


def fixture_tasks() -> list[JudgeTask]:
    raw = json.loads(TASKS_FILE.read_text(encoding="utf-8"))
    return [
        JudgeTask(t["task_id"], t["instruction"], tuple(Candidate(**c) for c in t["candidates"]))
        for t in raw
    ]


def run_tasks(path: Path) -> list[JudgeTask]:
    """A run's tasks with their attempts and verdict statuses."""
    from selfalign.store import RunDir

    run = RunDir(path)
    statuses = {r["attempt_id"]: r.get("status", "") for r in run.stage("verdicts").read()}
    instructions = {r["id"]: r.get("instruction", "") for r in run.stage("tasks").read()}
    grouped: dict[str, list[Candidate]] = {}
    for r in run.stage("attempts").read():
        task_id = str(r.get("task_id") or r.get("parent_id"))
        grouped.setdefault(task_id, []).append(
            Candidate(
                r["id"],
                r.get("response", ""),
                statuses.get(r["id"], ""),
                r.get("sample_index", 0),
                r.get("parse_error"),
            )
        )
    return [
        JudgeTask(t, instructions.get(t, ""), tuple(c))
        for t, c in grouped.items()
        if t in instructions
    ]


@dataclass
class Side:
    """One way of judging: its prompts, and per prompt how many responses it rates."""

    name: str
    prompts: list[Prompt]
    counts: list[int]

    @property
    def judged(self) -> int:
        return sum(self.counts)


def build_sides(
    tasks: list[JudgeTask], cfg: JudgeConfig, prompts: JudgePrompts
) -> tuple[Side, Side]:
    grouped = Side("one call per task", [], [])
    single = Side("one call per response", [], [])
    for task in tasks:
        kept, _ = choose_candidates(task.candidates, cfg)
        if not kept:
            continue
        texts = [cut(c.response, cfg.max_response_chars) for c in kept]
        for preference in cfg.preferences:
            grouped.prompts.append(prompts.render(task.instruction, texts, preference))
            grouped.counts.append(len(texts))
            for text in texts:
                single.prompts.append(prompts.render(task.instruction, [text], preference))
                single.counts.append(1)
    return grouped, single


def ideal_answer(count: int) -> str:
    return "\n\n".join(
        f"### Response {i}\nRating: 4\nRationale: {RATIONALE}" for i in range(1, count + 1)
    )


def token_count(tokenizer: Any, prompt: Prompt) -> int:
    if isinstance(prompt, str):
        return len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    return len(
        tokenizer(chat_template_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--run", type=Path, help="use this run's attempts instead of the fixtures")
    parser.add_argument("--max-responses", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=200, help="of a real generation")
    parser.add_argument("--gen-tasks", type=int, default=2, help="tasks of the real generation")
    parser.add_argument("--gen-preferences", type=int, default=1, help="preferences generated")
    parser.add_argument("--no-generate", action="store_true", help="count tokens only")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from selfalign.llm.embedded import EMBEDDED_NAME, resolve_model

    tasks = run_tasks(args.run) if args.run else fixture_tasks()
    cfg = JudgeConfig(max_responses=args.max_responses, max_tokens=args.max_tokens)
    prompts = JudgePrompts.load("", cfg.preferences, "chat")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(EMBEDDED_NAME))
    grouped, single = build_sides(tasks, cfg, prompts)
    assert grouped.judged == single.judged, "both sides must judge the same responses"

    rows: list[tuple[str, float, float]] = []
    per = {}
    for side in (grouped, single):
        prompt_tokens = sum(token_count(tokenizer, p) for p in side.prompts)
        answer_tokens = sum(
            len(tokenizer(ideal_answer(n), add_special_tokens=False)["input_ids"])
            for n in side.counts
        )
        per[side.name] = (prompt_tokens / side.judged, answer_tokens / side.judged)
    rows.append(("calls", len(grouped.prompts), len(single.prompts)))
    rows.append(("prompt tokens / judged response", per[grouped.name][0], per[single.name][0]))
    rows.append(
        (
            "completion tokens / judged response (format answer)",
            per[grouped.name][1],
            per[single.name][1],
        )
    )

    generated: dict[str, tuple[float, float, float]] = {}
    if not args.no_generate:
        from selfalign.llm import ModelConfig, load_llm

        llm = load_llm(ModelConfig(device="cpu"))
        small_cfg = JudgeConfig(
            preferences=list(PREFERENCES[: args.gen_preferences]),
            max_responses=args.max_responses,
            max_tokens=args.max_tokens,
        )
        small = build_sides(tasks[: args.gen_tasks], small_cfg, prompts)
        for side in small:
            start = time.perf_counter()
            outputs = llm.generate(side.prompts, small_cfg.sampling())
            seconds = time.perf_counter() - start
            tokens = sum(g.completion_tokens for row in outputs for g in row)
            readable = sum(
                parse_judgment(
                    row[0].text if row else "", n, row[0].finish_reason if row else "stop"
                ).ok
                for row, n in zip(outputs, side.counts, strict=True)
            )
            generated[side.name] = (
                tokens / side.judged,
                seconds / side.judged,
                readable / len(side.prompts),
            )
        g, s = generated[grouped.name], generated[single.name]
        rows.append(("completion tokens / judged response (135M, greedy)", g[0], s[0]))
        rows.append(("seconds / judged response (135M, CPU)", g[1], s[1]))
        rows.append(("judgments that parsed (135M)", g[2], s[2]))

    table = Table(
        title=f"Judge cost on {grouped.judged // len(cfg.preferences)} responses of "
        f"{len(tasks)} tasks x {len(cfg.preferences)} preferences"
    )
    table.add_column("measure")
    table.add_column(grouped.name, justify="right")
    table.add_column(single.name, justify="right")
    table.add_column("per response ÷ per task", justify="right")
    for name, a, b in rows:
        ratio = f"{b / a:.2f}x" if a else "-"
        fmt = "{:.0f}" if name == "calls" else ("{:.0%}" if "parsed" in name else "{:.1f}")
        table.add_row(name, fmt.format(a), fmt.format(b), ratio)
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
