"""The five coding preferences and their 1–5 rubrics, read from ``prompts/judge/rubrics/``.

One TOML file per preference (``<preference>.toml``): a title, the question the
judge answers, a few criteria and a named label per level. The files are the
rubrics' only source, so editing one changes the prompts and hence the ids of
judgments made with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from selfalign.config import ConfigError

PREFERENCES = (
    "instruction_following",
    "code_explanation",
    "complexity_efficiency",
    "readability",
    "coding_style",
)
"""The coding preferences of CodeUltraFeedback, in the order judgments list them."""

MIN_RATING, MAX_RATING = 1, 5


@dataclass(frozen=True)
class Level:
    """One point of a rubric's scale: its score, a short label and what earns it."""

    score: int
    label: str
    description: str


@dataclass(frozen=True)
class Rubric:
    """How to rate one preference: the question, the criteria and the scale."""

    preference: str
    title: str
    question: str
    criteria: tuple[str, ...]
    levels: tuple[Level, ...]

    def text(self) -> str:
        """The rubric as the judge reads it (markdown)."""
        lines = [f"## Quality to judge: {self.title}", self.question, "", "Look at:"]
        lines += [f"- {c}" for c in self.criteria]
        lines += ["", "Scale:"]
        lines += [f"- {lv.score} ({lv.label}): {lv.description}" for lv in self.levels]
        return "\n".join(lines)


def rubrics_dir(prompts_dir: Path) -> Path:
    return prompts_dir / "judge" / "rubrics"


def load_rubric(path: Path, preference: str) -> Rubric:
    """Read and check one rubric file; the error names the file and what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"rubric {path} is missing: restore prompts/judge/rubrics/ or pass --prompts-dir"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"rubric {path} cannot be read: {exc}") from exc
    if data.get("preference") != preference:
        raise ConfigError(
            f"rubric {path} says preference = {data.get('preference')!r}; "
            f"the file for {preference!r} must say preference = {preference!r}"
        )
    for key in ("title", "question"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"rubric {path}: {key} must be a non-empty string")
    criteria = data.get("criteria")
    if (
        not isinstance(criteria, list)
        or not criteria
        or not all(isinstance(c, str) and c.strip() for c in criteria)
    ):
        raise ConfigError(f"rubric {path}: criteria must be a non-empty list of strings")
    raw_levels = data.get("levels")
    if not isinstance(raw_levels, list):
        raise ConfigError(f"rubric {path}: needs [[levels]] tables (score, label, description)")
    levels: list[Level] = []
    for raw in raw_levels:
        if not isinstance(raw, dict) or not {"score", "label", "description"} <= raw.keys():
            raise ConfigError(f"rubric {path}: each [[levels]] needs score, label, description")
        levels.append(Level(int(raw["score"]), str(raw["label"]), str(raw["description"])))
    scores = [lv.score for lv in levels]
    if scores != list(range(MIN_RATING, MAX_RATING + 1)):
        raise ConfigError(
            f"rubric {path}: levels must be scores {MIN_RATING} to {MAX_RATING} in order, "
            f"got {scores}"
        )
    return Rubric(
        preference=preference,
        title=data["title"].strip(),
        question=data["question"].strip(),
        criteria=tuple(c.strip() for c in criteria),
        levels=tuple(levels),
    )


def load_rubrics(prompts_dir: Path, preferences: tuple[str, ...] = PREFERENCES) -> list[Rubric]:
    """The rubrics of ``preferences``, in that order."""
    unknown = [p for p in preferences if p not in PREFERENCES]
    if unknown:
        raise ConfigError(
            f"unknown preference {unknown[0]!r}; choose from: {', '.join(PREFERENCES)}"
        )
    root = rubrics_dir(prompts_dir)
    return [load_rubric(root / f"{p}.toml", p) for p in preferences]
