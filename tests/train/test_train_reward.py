"""A reward model of the 135M model, trained a few steps on CPU: held-out accuracy on the card,
and the output reloads as a sequence classifier that scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.train.config import RewardOptions
from selfalign.train.data import DataError, load_training_data
from selfalign.train.reward import select_source, split_by_task, train_reward

FIXTURE = Path(__file__).parents[1] / "fixtures" / "grpo" / "dataset"


def test_held_out_split_keeps_each_task_on_one_side() -> None:
    rows = [{"task_id": f"t{i // 2}", "n": i} for i in range(20)]
    train, held = split_by_task(rows, 0.2, seed=1)
    assert len(held) == 4 and len(train) == 16
    assert {r["task_id"] for r in held}.isdisjoint({r["task_id"] for r in train})
    assert split_by_task(rows, 0.2, seed=1) == (train, held)  # seeded
    assert split_by_task(rows[:2], 0.5, seed=1) == (rows[:2], [])  # one task: nothing held out


def test_source_selects_pairs_and_counts_the_others() -> None:
    data = load_training_data(FIXTURE, "pairs", keep=("preference_source",))
    select_source(data, "judge")
    assert data.used == 2 and data.skipped["source_not_judge"] == 8
    data = load_training_data(FIXTURE, "pairs", keep=("preference_source",))
    with pytest.raises(DataError, match="--source all"):
        select_source(data, "both")


@pytest.mark.slow
def test_reward_model_trains_reloads_and_scores(embedded_model: str, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "rm"
    result = train_reward(
        RewardOptions(
            data=str(FIXTURE),
            model=embedded_model,
            out=str(out),
            preset="demo",
            max_steps=3,
            batch_size=2,
            max_length=160,
            eval_fraction=0.3,
            save_steps=10,
            logging_steps=1,
        )
    )
    assert result.kind == "reward" and result.global_step == 3
    assert result.train_loss is not None
    m = result.metrics
    assert m["heldout_tasks"] == 3 and m["heldout_pairs"] == 3 and m["train_pairs"] == 7
    assert result.rows_used == 7
    assert 0.0 <= m["heldout_accuracy"] <= 1.0 and 0.0 <= m["heldout_accuracy_before"] <= 1.0
    card = (out / "README.md").read_text()
    assert "heldout_accuracy" in card and "AutoModelForSequenceClassification" in card
    assert json.loads((out / "selfalign_train.json").read_text())["metrics"]["heldout_pairs"] == 3

    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_labels == 1
    texts = [
        tokenizer.apply_chat_template(
            [
                {"role": "user", "content": "Write add(a, b)."},
                {"role": "assistant", "content": answer},
            ],
            tokenize=False,
        )
        for answer in ("def add(a, b):\n    return a + b", "I don't know.")
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        scores = model(**batch).logits
    assert scores.shape == (2, 1) and torch.isfinite(scores).all()
    assert scores[0, 0] != scores[1, 0]
