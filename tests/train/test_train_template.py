"""The training chat template: renders like the model's own, marks only the answer."""

from __future__ import annotations

import pytest

from selfalign.train.template import INSTRUCT_TEMPLATE, TemplateError, training_template


@pytest.fixture(scope="module")
def tokenizer(embedded_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model)


def _masked(tok, template: str, messages: list[dict[str, str]]) -> tuple[str, str]:
    out = tok.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    ignored = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    return trained, ignored


def test_smollm2_gets_a_chatml_template_that_trains_on_the_answer_only(tokenizer) -> None:
    template, source = training_template(tokenizer)
    assert "ChatML" in source
    messages = [
        {"role": "user", "content": "Write f."},
        {"role": "assistant", "content": "def f():\n    return 1"},
    ]
    # Same text as the model's own template: inference is unchanged.
    assert tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False) == (
        tokenizer.apply_chat_template(messages, tokenize=False)
    )
    trained, ignored = _masked(tokenizer, template, messages)
    assert trained == "def f():\n    return 1<|im_end|>"  # the end-of-turn token is learned
    assert "Write f." in ignored and "SmolLM" in ignored


def test_a_model_without_template_gets_the_instruction_format(tokenizer) -> None:
    original = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        template, source = training_template(tokenizer)
        assert template == INSTRUCT_TEMPLATE and "had none" in source
        pair = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
        trained, ignored = _masked(tokenizer, template, pair)
        assert trained == "A" + tokenizer.eos_token
        assert ignored.startswith("### Instruction\nQ")
        tokenizer.chat_template = "{{ messages[0]['content'] }}"
        with pytest.raises(TemplateError, match="--chat-template"):
            training_template(tokenizer)
    finally:
        tokenizer.chat_template = original
