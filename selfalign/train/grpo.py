"""GRPO with TRL's `GRPOTrainer`: the model answers the data set's tasks, the sandbox grades.

The prompt is the task's instruction (the SFT row's conversation without its
answer). The rewards are the task's own tests run in the sandbox and vouched for by
the verifier (``execution``, :mod:`selfalign.train.execution_reward`), the answer's
format (``format``) and optionally a reward model (:mod:`selfalign.train.rewards`);
``--*-weight`` options weigh them.

One sandbox pool serves the whole training: it is opened before the model loads
(a missing Docker fails at once, not after minutes of loading), used by the task
screening (:mod:`selfalign.train.screen`) and by every reward round, and closed
when training ends, by Ctrl-C or on a crash. A seeded share of the screened tasks is
held out and written to ``OUT/heldout.jsonl`` for the before/after evaluation
(:mod:`selfalign.train.task_eval`). Every reward round is a line of
``OUT/rewards.jsonl``; TRL's logs carry each reward's mean and the execution
reward's pass rate, gamed count, sandbox errors and sandbox time share.

Multi-GPU: `accelerate launch -m selfalign.train.grpo --data RUN/dataset --out DIR ...`
(each process opens its own pool for its share of the completions).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.store import atomic_write_text, dumps_line
from selfalign.train.common import (
    Device,
    TrainResult,
    drop_longer_than,
    load_model,
    load_tokenizer,
    lora_config,
    pick_device,
    resolve_model_name,
    run_training,
    trainer_arguments,
    training_context,
)
from selfalign.train.config import GRPOOptions, Hyperparameters
from selfalign.train.data import DataError, TrainingData, load_training_data
from selfalign.train.execution_reward import ExecutionReward, ProgramRunner, reward_strength
from selfalign.train.reward import split_by_task
from selfalign.train.rewards import FormatReward, RewardModelReward
from selfalign.train.sandbox_session import SandboxSession, sandbox_config
from selfalign.train.screen import screen_tasks
from selfalign.train.template import INSTRUCT_TEMPLATE

if TYPE_CHECKING:
    from selfalign.sandbox import SandboxConfig

logger = logging.getLogger(__name__)

HELDOUT_FILE = "heldout.jsonl"
"""The held-out tasks (prompt, tests, task_id, solution), one per line."""
REWARD_LOG = "rewards.jsonl"
"""One line per reward round: every completion's execution reward and the round's numbers."""


def grpo_sandbox(opts: GRPOOptions, base: SandboxConfig | None = None) -> SandboxConfig:
    """The sandbox of the execution reward: ``base`` (the [sandbox] section) with the
    ``--sandbox*`` options laid over it."""
    return sandbox_config(
        base,
        backend=opts.sandbox,
        workers=opts.sandbox_workers,
        timeout_s=opts.sandbox_timeout_s,
    )


def drop_long_prompts(data: TrainingData, tokenizer: Any, max_length: int) -> None:
    """Skip (and count) tasks whose prompt is longer than ``max_length`` tokens."""

    def length(row: dict[str, Any]) -> int:
        return len(
            tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        )

    drop_longer_than(data, length, max_length, "prompt_too_long", "task_id")


def write_heldout(out: Path, rows: list[dict[str, Any]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / HELDOUT_FILE
    atomic_write_text(path, "".join(dumps_line(r) for r in rows))
    return path


def _check_vllm(opts: GRPOOptions) -> None:
    if opts.use_vllm and importlib.util.find_spec("vllm") is None:
        raise DataError(
            "--use-vllm needs vLLM: pip install 'selfalign[vllm]' (on a GPU machine), "
            "or drop --use-vllm to generate with transformers"
        )


def _grpo_args(opts: GRPOOptions, hp: Hyperparameters, device: Device, weights: list[float]) -> Any:
    from trl.trainer.grpo_config import GRPOConfig

    arguments = trainer_arguments(opts, hp, device)
    arguments.pop("max_length")  # GRPO has no such option: prompts were checked above
    extra: dict[str, Any] = {}
    if opts.use_vllm:
        extra = {"use_vllm": True, "vllm_mode": opts.vllm_mode}
        if opts.vllm_server_base_url:
            extra["vllm_server_base_url"] = opts.vllm_server_base_url
    return GRPOConfig(
        **arguments,
        num_generations=hp.num_generations,
        max_completion_length=hp.max_completion_length,
        temperature=hp.temperature,
        top_p=opts.top_p,
        beta=hp.beta,
        reward_weights=weights,
        **extra,
    )


def _clock_callback(execution: ExecutionReward) -> Any:
    from transformers import TrainerCallback

    class StartClock(TrainerCallback):
        """Starts the sandbox-time-share clock when training (not model loading) starts."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            execution.start_clock()

    return StartClock()


def build_grpo_trainer(
    opts: GRPOOptions, runner: ProgramRunner, callbacks: list[Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The configured `GRPOTrainer` (rewards run on ``runner``) and what the card needs."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    opts.check_paths()
    _check_vllm(opts)
    data = load_training_data(opts.data, "tasks")
    hp = opts.hyperparameters()
    device = pick_device(opts.cpu)
    base = resolve_model_name(opts.model)
    tokenizer = load_tokenizer(base)
    tokenizer.padding_side = "left"  # generation continues the prompt's last token
    template_source: str | None = None
    if not tokenizer.chat_template:
        tokenizer.chat_template = INSTRUCT_TEMPLATE
        template_source = "selfalign instruction template (the model had none)"
    drop_long_prompts(data, tokenizer, hp.max_length)
    # Screen before the split: a held-out task with weak tests would flatter the
    # before/after evaluation as much as it would mislead training.
    screened = screen_tasks(data, runner) if opts.screen_tasks else {}
    train_rows, heldout = split_by_task(data.rows, opts.heldout_fraction, opts.seed)
    write_heldout(Path(opts.out), heldout)
    data.rows = train_rows
    if not data.rows:
        raise DataError(
            f"no task left to train on ({data.read} read, skipped: {dict(data.skipped)}); "
            "GRPO needs tasks whose tests the verifier calls strong (docs/verification.md)"
        )

    out = Path(opts.out)
    execution = ExecutionReward(
        runner,
        partial_credit=opts.partial_credit,
        retries=opts.sandbox_retries,
        strength=reward_strength(opts.expectation_checks),
        log_path=out / REWARD_LOG,
    )
    rewards: list[Any] = [execution]
    weights = [opts.execution_weight]
    if opts.format_weight > 0:
        rewards.append(FormatReward(leader=execution))
        weights.append(opts.format_weight)
    if opts.reward_model:
        rewards.append(
            RewardModelReward(
                resolve_model_name(opts.reward_model),
                device="cpu" if device.use_cpu else "cuda",
                leader=execution,
            )
        )
        weights.append(opts.reward_model_weight)

    model = load_model(base, hp, device)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=_grpo_args(opts, hp, device, weights),
        train_dataset=data.to_dataset(),
        processing_class=tokenizer,
        peft_config=lora_config(opts),
        callbacks=[_clock_callback(execution), *(callbacks or [])],
    )

    trained_on = len(data.rows)

    def metrics(_trainer: Any) -> dict[str, Any]:
        totals = execution.totals.to_dict()
        return {
            "tasks_trained_on": trained_on,
            "tasks_held_out": len(heldout),
            "tasks_screened_out": dict(screened),
            "reward_weights": dict(zip([_name(r) for r in rewards], weights, strict=True)),
            "execution": {
                k: totals[k]
                for k in (
                    "rounds",
                    "completions",
                    "pass_rate",
                    "gamed",
                    "no_code",
                    "sandbox_errors",
                    "undecided",
                    "uncredited",
                    "retried",
                    "sandbox_time_share",
                    "statuses",
                    "gaming_reasons",
                )
            },
            # More than 1 only when a broken pool had to be replaced during training.
            "sandbox_pools_opened": getattr(runner, "opened", None),
        }

    context = training_context("grpo", opts, hp, device, base, data, template_source, metrics)
    return trainer, context


def _name(reward: Any) -> str:
    return str(getattr(reward, "__name__", type(reward).__name__))


def train_grpo(
    opts: GRPOOptions,
    sandbox: SandboxConfig | None = None,
    callbacks: list[Any] | None = None,
    runner: ProgramRunner | None = None,
) -> TrainResult:
    """GRPO of ``opts.model`` on ``opts.data``'s tasks; resumes from ``opts.out``.

    ``runner`` replaces the sandbox pool (tests of the flow); by default one pool of
    ``sandbox`` (with the ``--sandbox*`` options) serves the whole run and is closed
    however the run ends.
    """
    if runner is not None:
        trainer, context = build_grpo_trainer(opts, runner, callbacks)
        return run_training(trainer, **context)
    with SandboxSession(grpo_sandbox(opts, sandbox)) as session:
        trainer, context = build_grpo_trainer(opts, session, callbacks)
        return run_training(trainer, **context)


if __name__ == "__main__":
    from selfalign.train.cli import grpo_command

    grpo_command(prog_name="selfalign train grpo")
