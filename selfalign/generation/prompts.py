"""Few-shot examples and system prompts, rendered as chat messages or completion text.

An example is one human-editable TOML file (`prompts/examples/NN-slug.toml`); a
system prompt is one markdown file per stage (`prompts/system/<stage>.md`). Few-shot
examples are drawn per request with an RNG seeded by the record id and the stage
seed, so a resumed run renders exactly the prompts the first run would have.
"""

from __future__ import annotations

import hashlib
import json
import random
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.config import ConfigError
from selfalign.llm.base import Message, Prompt, is_prefill

STAGES = ("concepts", "tasks", "respond")
TESTS_HEADING = "### Tests"

# Section markers of completion mode; a base model continuing past its answer starts
# the next example with one of these, so they double as stop sequences.
SNIPPET, CONCEPTS, TASK_SPEC, INSTRUCTION, RESPONSE = (
    "### Snippet",
    "### Concepts",
    "### Task",
    "### Instruction",
    "### Response",
)
STOPS: dict[str, tuple[str, ...]] = {
    "concepts": ("\n" + SNIPPET, "\n\n\n"),
    "tasks": ("\n" + TASK_SPEC, "\n" + RESPONSE),
    "respond": ("\n" + INSTRUCTION,),
}


@dataclass(frozen=True)
class FewShotExample:
    """One worked example: a seed, its concepts, the task written from them, and the answer."""

    name: str
    category: str
    language: str
    difficulty: str
    concepts: tuple[str, ...]
    seed: str
    instruction: str
    response: str
    tests: str

    @property
    def answer(self) -> str:
        """The I→R answer as the model must write it: response, tests heading, tests block."""
        return f"{self.response.strip()}\n\n{TESTS_HEADING}\n```python\n{self.tests.strip()}\n```"


_REQUIRED = (
    "category",
    "language",
    "difficulty",
    "concepts",
    "seed",
    "instruction",
    "response",
    "tests",
)


def default_prompts_dir() -> Path:
    """The project's `prompts/` directory (next to the `selfalign` package in a checkout)."""
    return Path(__file__).resolve().parents[2] / "prompts"


def load_example(path: Path) -> FewShotExample:
    """Read and check one example file; the error names the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"few-shot example {path} cannot be read: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"few-shot example {path} lacks keys: {', '.join(missing)}")
    concepts = data["concepts"]
    if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
        raise ConfigError(f"few-shot example {path}: concepts must be a list of strings")
    texts = {k: data[k] for k in _REQUIRED if k != "concepts"}
    for key, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"few-shot example {path}: {key} must be a non-empty string")
    return FewShotExample(name=path.stem, concepts=tuple(concepts), **texts)


def load_examples(prompts_dir: Path) -> list[FewShotExample]:
    """All examples under `prompts_dir/examples`, sorted by file name."""
    return [load_example(p) for p in sorted((prompts_dir / "examples").glob("*.toml"))]


def load_system_prompt(prompts_dir: Path, stage: str) -> str:
    path = prompts_dir / "system" / f"{stage}.md"
    if not path.is_file():
        raise ConfigError(
            f"system prompt {path} is missing: restore prompts/system/ or pass --prompts-dir"
        )
    return path.read_text(encoding="utf-8").strip()


def request_rng(seed: int, record_id: str) -> random.Random:
    """An RNG for one request, independent of batch order and of earlier requests."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def prompt_hash(prompt: Prompt) -> str:
    """A short hash of a rendered prompt, for record ids (a changed prompt is new work)."""
    payload = json.dumps(prompt, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# -- the three stages' user turns and answers ------------------------------------


def concepts_query(seed_code: str, language: str = "python") -> str:
    return f"{SNIPPET}\n```{language}\n{seed_code.strip()}\n```"


def concepts_answer(concepts: Sequence[str]) -> str:
    return ", ".join(concepts)


def tasks_query(concepts: Sequence[str], category: str, difficulty: str, language: str) -> str:
    return (
        f"{TASK_SPEC}\nLanguage: {language}\nCategory: {category}\nDifficulty: {difficulty}\n"
        f"Concepts: {', '.join(concepts)}"
    )


def respond_query(instruction: str) -> str:
    return f"{INSTRUCTION}\n{instruction.strip()}"


@dataclass
class PromptBuilder:
    """Renders one stage's prompts in chat or completion mode with sampled few-shots."""

    stage: str
    system: str
    examples: list[FewShotExample]
    num_fewshot: int
    mode: str = "chat"
    seed: int = 0
    _cache: dict[str, list[FewShotExample]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, stage: str, prompts_dir: str | Path, *, num_fewshot: int, mode: str, seed: int
    ) -> PromptBuilder:
        root = Path(prompts_dir) if str(prompts_dir) else default_prompts_dir()
        if not root.is_dir():
            raise ConfigError(f"prompts directory {root} does not exist; pass --prompts-dir")
        examples = load_examples(root) if num_fewshot else []
        if num_fewshot and not examples:
            raise ConfigError(
                f"no few-shot examples in {root / 'examples'}: add NN-slug.toml files "
                "(see prompts/README.md) or pass --num-fewshot 0"
            )
        return cls(stage, load_system_prompt(root, stage), examples, num_fewshot, mode, seed)

    @property
    def stop(self) -> tuple[str, ...]:
        return STOPS[self.stage] if self.mode == "completion" else ()

    def pick(self, record_id: str, prefer_category: str | None = None) -> list[FewShotExample]:
        """The few-shot examples for one request: seeded by the record id, same-category first."""
        rng = request_rng(self.seed, record_id)
        pool = list(self.examples)
        rng.shuffle(pool)
        if prefer_category is not None:
            pool.sort(key=lambda e: e.category != prefer_category)  # stable: keeps the shuffle
        return pool[: self.num_fewshot]

    def render(self, turns: list[tuple[str, str]], query: str) -> Prompt:
        """Few-shot (user, assistant) turns then the query, as chat messages or text."""
        if self.mode == "chat":
            messages: list[Message] = [{"role": "system", "content": self.system}]
            for user, assistant in turns:
                messages.append({"role": "user", "content": user})
                messages.append({"role": "assistant", "content": assistant})
            messages.append({"role": "user", "content": query})
            return messages
        parts = [self.system]
        for user, assistant in turns:
            parts.append(f"{user}\n{_answer_marker(self.stage)}\n{assistant}")
        parts.append(f"{query}\n{_answer_marker(self.stage)}\n")
        return "\n\n".join(parts)

    # The three stages ---------------------------------------------------------

    def concepts(self, record_id: str, seed_code: str, language: str) -> Prompt:
        shots = self.pick(record_id)
        turns = [(concepts_query(e.seed, e.language), concepts_answer(e.concepts)) for e in shots]
        return self.render(turns, concepts_query(seed_code, language))

    def tasks(
        self,
        record_id: str,
        concepts: Sequence[str],
        category: str,
        difficulty: str,
        language: str,
    ) -> Prompt:
        shots = self.pick(record_id, prefer_category=category)
        turns = [
            (tasks_query(e.concepts, e.category, e.difficulty, e.language), e.instruction.strip())
            for e in shots
        ]
        return self.render(turns, tasks_query(concepts, category, difficulty, language))

    def respond(self, record_id: str, instruction: str, category: str | None = None) -> Prompt:
        shots = self.pick(record_id, prefer_category=category)
        turns = [(respond_query(e.instruction), e.answer) for e in shots]
        return self.render(turns, respond_query(instruction))


def with_answer_start(prompt: Prompt, start: str) -> Prompt:
    """``prompt`` with the first words of the answer already written (a prefill).

    Chat prompts get (or extend) a final assistant message, which the backends
    continue; completion text simply goes on. The generation is then the rest of
    the answer, so a stage parses ``start + generation``.
    """
    if not start:
        return prompt
    if isinstance(prompt, str):
        return prompt + start
    if is_prefill(prompt):
        last = prompt[-1]
        return [*prompt[:-1], {"role": "assistant", "content": last["content"] + start}]
    return [*prompt, {"role": "assistant", "content": start}]


def _answer_marker(stage: str) -> str:
    return {"concepts": CONCEPTS, "tasks": INSTRUCTION, "respond": RESPONSE}[stage]
