"""GRPO's other rewards: the answer's format, and a trained reward model's score.

* :class:`FormatReward` (``format``): 1 for exactly one parsable solution code
  block that defines every function the tests call, else 0.
* :class:`RewardModelReward` (``reward_model``): the score of a model trained by
  `selfalign train reward` on the conversation (prompt + answer).

The execution reward (:mod:`selfalign.train.execution_reward`) leads: a completion
it leaves out (``None``, the sandbox could not run it) is left out by these too,
since TRL drops a completion only when every reward is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfalign.train.completion import completion_text, format_score
from selfalign.train.execution_reward import ExecutionReward


def _left_out(leader: ExecutionReward | None, n: int) -> set[int]:
    """Completions the execution reward left out of this round (same batch: same length)."""
    if leader is None or len(leader.last_scores) != n:
        return set()
    return {i for i, s in enumerate(leader.last_scores) if s is None}


class FormatReward:
    """TRL reward function: one parsable solution block defining what the tests call."""

    __name__ = "format"

    def __init__(self, leader: ExecutionReward | None = None) -> None:
        self.leader = leader

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        tests: Sequence[str],
        **columns: Any,
    ) -> list[float | None]:
        skip = _left_out(self.leader, len(completions))
        return [
            None if i in skip else format_score(completion_text(c), t)
            for i, (c, t) in enumerate(zip(completions, tests, strict=True))
        ]


class RewardModelReward:
    """TRL reward function: the score of a reward model on the conversation (prompt + answer)."""

    __name__ = "reward_model"

    def __init__(
        self,
        path: str,
        device: str = "cpu",
        batch_size: int = 8,
        leader: ExecutionReward | None = None,
    ) -> None:
        from selfalign.train.reward import load_reward_model

        self.scorer = load_reward_model(path, device=device)
        self.batch_size = batch_size
        self.leader = leader

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        skip = _left_out(self.leader, len(completions))
        conversations = []
        for prompt, completion in zip(prompts, completions, strict=True):
            turns = (
                list(prompt)
                if isinstance(prompt, list)
                else [{"role": "user", "content": str(prompt)}]
            )
            conversations.append(
                [*turns, {"role": "assistant", "content": completion_text(completion)}]
            )
        scores = self.scorer.score(conversations, batch_size=self.batch_size)
        return [None if i in skip else s for i, s in enumerate(scores)]
