"""SFT of the 135M model on CPU: a killed run resumes; the output loads and generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.train.config import SFTOptions
from selfalign.train.sft import build_sft_trainer, train_sft


class Killed(Exception):
    """Stands in for a SIGKILL right after the first checkpoint is on disk."""


def _callbacks():
    from transformers import TrainerCallback

    class KillAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Killed(state.global_step)

    class CountSteps(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps += 1

    return KillAfterFirstSave(), CountSteps


def _options(data: Path, model: str, out: Path) -> SFTOptions:
    # SGD keeps no optimizer state, so checkpoints are just the weights: quick to write.
    return SFTOptions(
        data=str(data),
        model=model,
        out=str(out),
        preset="demo",
        max_steps=2,
        save_steps=1,
        batch_size=2,
        max_length=96,
        optimizer="sgd",
        learning_rate=1e-3,
        logging_steps=1,
    )


@pytest.mark.slow
def test_loss_is_on_the_answer_tokens_only(dataset_dir: Path, embedded_model: str, tmp_path: Path):
    trainer, context = build_sft_trainer(_options(dataset_dir, embedded_model, tmp_path / "m"))
    example = trainer.train_dataset[0]
    tokenizer = trainer.processing_class
    # The labels are what the loss sees: -100 everywhere but the answer.
    trained = tokenizer.decode([t for t in example["labels"] if t != -100])
    row = context["data"].rows[0]["messages"]
    assert trained == row[-1]["content"] + "<|im_end|>"
    assert row[0]["content"] not in trained


@pytest.mark.slow
def test_sft_resumes_after_a_kill_then_loads_and_generates(
    dataset_dir: Path, embedded_model: str, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "sft"
    opts = _options(dataset_dir, embedded_model, out)
    killer, counter = _callbacks()
    with pytest.raises(Killed):
        train_sft(opts, callbacks=[killer])
    assert (out / "checkpoint-1").is_dir()
    assert not (out / "model.safetensors").exists()

    counter.steps = 0
    result = train_sft(opts, callbacks=[counter()])
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-1")
    assert result.global_step == 2
    assert counter.steps == 1  # only the step the killed run had not done
    assert result.rows_used == 16 and result.rows_skipped == {
        "last_turn_not_assistant": 1,
        "missing_messages": 1,
    }

    card = (out / "README.md").read_text()
    assert "base_model:" in card and str(dataset_dir / "sft.jsonl") in card
    assert "rows trained on: 16" in card and "Preset: `demo`" in card and "trl " in card
    assert json.loads((out / "selfalign_train.json").read_text())["global_step"] == 2
    assert len((out / "skipped_rows.jsonl").read_text().splitlines()) == 2

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a Python function `add_2(x)` that returns x + 2."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
