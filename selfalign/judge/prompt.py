"""The judge's prompt: one call per task and preference, every response in a recorded order.

The order is a seeded shuffle keyed by (seed, task id, preference, round), so a
re-run or a resumed run presents the responses exactly as the first run did, and
the order is written into the judgment so positions map back to attempts. The
texts (system prompt, output format, rubrics) are files under ``prompts/judge/``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from selfalign.config import ConfigError
from selfalign.generation.prompts import default_prompts_dir
from selfalign.judge.rubrics import MAX_RATING, MIN_RATING, Rubric, load_rubrics
from selfalign.llm.base import Message, Prompt

TASK_HEADING = "## Task"
JUDGMENT_HEADING = "## Judgment"
COMPLETION_STOPS = ("\n" + TASK_HEADING, "\n## Quality to judge")
"""Completion mode: a base model that goes on after its judgment starts a new prompt."""

_MAX_RESHUFFLES = 16


def order_rng(seed: int, task_id: str, preference: str, round_index: int) -> random.Random:
    """An RNG for one judge call, independent of batch order, other tasks and resumes."""
    key = f"{seed}:{task_id}:{preference}:{round_index}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def presentation_orders(
    seed: int, task_id: str, preference: str, count: int, rounds: int, swap_order: str
) -> list[list[int]]:
    """For each round, the candidate indices in the order they are shown.

    Round 0 is a seeded shuffle. Round 1 (swap) is its reverse, or a second seeded
    shuffle that differs from the first whenever ``count`` allows it.
    """
    first = list(range(count))
    order_rng(seed, task_id, preference, 0).shuffle(first)
    orders = [first]
    if rounds > 1:
        if swap_order == "reverse":
            orders.append(first[::-1])
        else:
            rng = order_rng(seed, task_id, preference, 1)
            second = list(first)
            for _ in range(_MAX_RESHUFFLES):
                rng.shuffle(second)
                if second != first or count < 2:
                    break
            if second == first:
                second = first[::-1]
            orders.append(second)
    return orders


def skeleton(count: int) -> str:
    """The exact output layout the judge is asked to follow, for ``count`` responses."""
    return "\n\n".join(
        f"### Response {i}\nRating: <a whole number from {MIN_RATING} to {MAX_RATING}>\n"
        "Rationale: <one or two sentences>"
        for i in range(1, count + 1)
    )


def prefill_text() -> str:
    """The start of a judgment written for the model (prefill and retries)."""
    return "### Response 1\nRating:"


def cut(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` with a visible note (0: no cut)."""
    text = text.strip()
    if not max_chars or len(text) <= max_chars:
        return text
    return f"{text[:max_chars].rstrip()}\n[... {len(text) - max_chars} more characters cut]"


@dataclass(frozen=True)
class JudgePrompts:
    """The judge's texts, loaded once, and how one call is rendered in chat or completion mode."""

    system: str
    output_format: str
    rubrics: dict[str, Rubric]
    mode: str = "chat"

    @classmethod
    def load(
        cls, prompts_dir: str | Path, preferences: Sequence[str], mode: str = "chat"
    ) -> JudgePrompts:
        root = Path(prompts_dir) if str(prompts_dir) else default_prompts_dir()
        judge_dir = root / "judge"
        if not judge_dir.is_dir():
            raise ConfigError(
                f"judge prompts directory {judge_dir} does not exist: restore prompts/judge/ "
                "or pass --prompts-dir"
            )
        texts = {}
        for name in ("system", "format"):
            path = judge_dir / f"{name}.md"
            if not path.is_file():
                raise ConfigError(f"{path} is missing: restore prompts/judge/{name}.md")
            texts[name] = path.read_text(encoding="utf-8").strip()
        if "{skeleton}" not in texts["format"]:
            raise ConfigError(
                f"{judge_dir / 'format.md'} must contain {{skeleton}} where the output layout goes"
            )
        if mode not in ("chat", "completion"):
            raise ConfigError(f"mode must be chat or completion, got {mode!r}")
        rubrics = {r.preference: r for r in load_rubrics(root, tuple(preferences))}
        return cls(texts["system"], texts["format"], rubrics, mode)

    @property
    def stop(self) -> tuple[str, ...]:
        return COMPLETION_STOPS if self.mode == "completion" else ()

    def query(self, instruction: str, responses: Sequence[str], preference: str) -> str:
        """The user turn: rubric, task, the responses in presentation order, the format."""
        parts = [self.rubrics[preference].text(), f"{TASK_HEADING}\n{instruction.strip()}"]
        count = len(responses)
        noun = "response" if count == 1 else "responses"
        shown = [f"## Responses\nThere {'is' if count == 1 else 'are'} {count} {noun} to rate."]
        for i, text in enumerate(responses, start=1):
            shown.append(f"<response {i}>\n{text.strip()}\n</response {i}>")
        parts.append("\n\n".join(shown))
        fmt = self.output_format.replace("{skeleton}", skeleton(count))
        parts.append(f"## Your judgment\n{fmt}")
        return "\n\n".join(parts)

    def render(
        self, instruction: str, responses: Sequence[str], preference: str, prefill: bool = False
    ) -> Prompt:
        """One judge call as chat messages or completion text, optionally prefilled."""
        query = self.query(instruction, responses, preference)
        start = prefill_text() if prefill else ""
        if self.mode == "chat":
            messages: list[Message] = [
                {"role": "system", "content": self.system},
                {"role": "user", "content": query},
            ]
            if start:
                messages.append({"role": "assistant", "content": start})
            return messages
        return f"{self.system}\n\n{query}\n\n{JUDGMENT_HEADING}\n{start}"
