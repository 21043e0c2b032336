"""Chat templates that mark the assistant's tokens, so SFT learns the answers only.

TRL computes the loss on the assistant turns only (`assistant_only_loss`) when
the chat template wraps them in ``{% generation %}`` / ``{% endgeneration %}``.
Few shipped templates do; SmolLM2's does not, and base models (StarCoder2,
Qwen2.5-Coder base) have no template at all. We pick, in this order:

1. the user's ``--chat-template`` file;
2. the model's own template, when it already has the markers;
3. TRL's patched copy, for the templates TRL knows (Llama 3, Qwen 2.5/3, Phi-3, ...);
4. a ChatML template with markers, when it renders every probe conversation
   exactly as the model's template does (SmolLM2 and other ChatML models, the
   default system prompt included);
5. for a model without any template: a plain ``### Instruction / ### Response``
   template (the SelfCodeAlign prompt format), which is then saved with the model.

The markers render as nothing, so the chosen template produces the same text at
inference; it is saved with the trained tokenizer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class TemplateError(ValueError):
    """No chat template with generation markers could be found or built."""


INSTRUCT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ '### Response\\n' }}{% generation %}{{ message['content'] + eos_token }}"
    "{% endgeneration %}{{ '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response\\n' }}{% endif %}"
)
"""For models with no chat template: the SelfCodeAlign instruction format."""


def chatml_template(default_system: str | None) -> str:
    """ChatML with generation markers; ``default_system`` leads when no system turn is given."""
    head = ""
    if default_system is not None:
        system = default_system.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        head = (
            "{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\\n" + system + "<|im_end|>\\n' }}{% endif %}"
        )
    return (
        "{% for message in messages %}" + head + "{% if message['role'] == 'assistant' %}"
        "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
        "{% endgeneration %}{{ '\\n' }}"
        "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>\\n' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


_PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Write f."}, {"role": "assistant", "content": "def f(): pass"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
        {"role": "assistant", "content": "Hello\nagain"},
    ],
]


def _render(tokenizer: Any, template: str | None, messages: list[dict[str, str]], gen: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=gen
    )


def _renders_like(tokenizer: Any, candidate: str) -> bool:
    """Does ``candidate`` render every probe exactly as the tokenizer's own template?"""
    try:
        for messages in _PROBES:
            if _render(tokenizer, candidate, messages, False) != _render(
                tokenizer, None, messages, False
            ):
                return False
            prompt = messages[:-1]
            if _render(tokenizer, candidate, prompt, True) != _render(
                tokenizer, None, prompt, True
            ):
                return False
    except Exception:  # a template that fails on a probe is simply not a match
        return False
    return True


def _chatml_default_system(tokenizer: Any) -> str | None:
    text = _render(tokenizer, None, [{"role": "user", "content": "x"}], False)
    prefix = "<|im_start|>system\n"
    if text.startswith(prefix) and "<|im_end|>" in text:
        return text[len(prefix) : text.index("<|im_end|>")]
    return None


def training_template(tokenizer: Any, template_file: str | Path | None = None) -> tuple[str, str]:
    """The chat template to train with, and where it came from (for the model card)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if template_file is not None:
        path = Path(template_file)
        if not path.is_file():
            raise TemplateError(f"chat template file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        if not has_generation_markers(text):
            raise TemplateError(
                f"{path} has no {{% generation %}} ... {{% endgeneration %}} markers around the "
                "assistant's content; add them, or pass --no-assistant-only-loss"
            )
        return text, f"file {path}"
    own = tokenizer.chat_template
    if isinstance(own, dict):
        own = own.get("default")
    if not own:
        return INSTRUCT_TEMPLATE, "selfalign instruction template (the model had none)"
    if has_generation_markers(own):
        return own, "the model's own template"
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        patched = None
    if patched:
        return patched, "TRL's training version of the model's template"
    if "<|im_start|>" in own:
        candidate = chatml_template(_chatml_default_system(tokenizer))
        if _renders_like(tokenizer, candidate):
            return candidate, "selfalign ChatML template with generation markers"
    raise TemplateError(
        "the model's chat template has no {% generation %} markers and selfalign has no "
        "equivalent for it: pass --chat-template FILE.jinja (the same template with "
        "{% generation %} ... {% endgeneration %} around each assistant message), or "
        "--no-assistant-only-loss to train on the whole conversation"
    )
