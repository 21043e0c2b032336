"""DPO of the 135M model on CPU with LoRA: trains, merges, loads and generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfalign.train.config import DPOOptions
from selfalign.train.dpo import train_dpo


@pytest.mark.slow
def test_dpo_with_lora_saves_a_merged_model(
    dataset_dir: Path, embedded_model: str, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "dpo"
    result = train_dpo(
        DPOOptions(
            data=str(dataset_dir),
            model=embedded_model,
            out=str(out),
            preset="demo",
            max_steps=1,
            batch_size=2,
            max_length=96,
            lora=True,
            lora_r=4,
            save_steps=10,
        )
    )
    assert result.global_step == 1 and result.rows_used == 8 and result.lora
    assert result.train_loss is not None
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert "lora" in (out / "README.md").read_text()

    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer("def add(a, b):", return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]
