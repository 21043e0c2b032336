"""The arena: a model's answers against a baseline's, judged pairwise by a third model.

CodeArena's protocol (see ``docs/evaluation.md``): every question is answered by
the evaluated model and by the baseline (a model, or a column of the questions
file); the judge compares the two answers twice with their positions swapped
(`selfalign.evaluate.arena_judge`); the games' points give a win, tie or loss per
question and a score (`selfalign.evaluate.arena_score`), overall and per
category, language and difficulty, with bootstrap intervals.

Output directory:

* ``results.jsonl``: one line per question: the question, both answers, both
  games (who stood where, the judge's raw text, its follow-up reply, the verdict,
  the points) and the outcome;
* ``summary.json``: the statistics, the models, the settings and the skipped
  questions.

Each role's model is loaded when its turn comes and released after it, so three
GPU engines never sit in memory together; roles with the same configuration share
one engine.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.evaluate.arena_judge import Game, generate_answers, judge_games
from selfalign.evaluate.arena_questions import (
    AUTO_BASELINE,
    ArenaQuestion,
    QuestionSet,
    load_questions,
)
from selfalign.evaluate.arena_score import (
    MISSING_POLICIES,
    ArenaStats,
    grouped,
    outcome,
    stats,
    stats_from_dict,
)
from selfalign.llm.base import SamplingParams
from selfalign.stage import ProgressSink
from selfalign.store import atomic_write_text, dumps_line, read_jsonl

if TYPE_CHECKING:
    from selfalign.llm.base import LLM
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)

BENCHMARK = "arena"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
GROUPINGS = ("category", "language", "difficulty")


@dataclass
class ArenaConfig:
    """How to run the arena (section ``[eval.arena]``; the three models are chosen separately)."""

    questions: str | None = field(
        default=None,
        metadata={
            "help": "Questions JSONL in CodeArena's shape (id, messages, programming_language, "
            "difficulty, category); unset: the set shipped with selfalign."
        },
    )
    baseline_column: str | None = field(
        default=None,
        metadata={
            "help": "Take the baseline's answers from this column of the questions file instead "
            "of generating them ('auto': baseline, or the first *_response column, as in "
            "CodeArena's gpt-4-turbo-2024-04-09_response)."
        },
    )
    limit: int | None = field(
        default=None, metadata={"help": "Use only the first N questions (all if unset)."}
    )
    max_new_tokens: int = field(
        default=1024, metadata={"help": "Token budget of each answer (model and baseline)."}
    )
    judge_max_new_tokens: int = field(
        default=1024, metadata={"help": "Token budget of each judgment."}
    )
    conclude_max_new_tokens: int = field(
        default=32,
        metadata={"help": "Token budget of the follow-up that asks a judge for its verdict."},
    )
    conclude_prefill: str = field(
        default="Verdict: [[",
        metadata={
            "help": "The start of the judge's follow-up reply, written for it so that its next "
            "words are a label; empty: none (for a server that cannot continue an assistant "
            "message)."
        },
    )
    temperature: float = field(
        default=0.0, metadata={"help": "Sampling temperature of the answers; 0 is greedy."}
    )
    judge_temperature: float = field(
        default=0.0, metadata={"help": "Sampling temperature of the judge; 0 is greedy."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling (temperature > 0)."})
    repetition_penalty: float = field(
        default=1.0, metadata={"help": "Above 1 discourages loops (tiny models under greedy)."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the sampling (where the backend allows) and of "
                             "the bootstrap."}
    )
    bootstrap_rounds: int = field(
        default=1000, metadata={"help": "Resamples behind each 95% interval."}
    )
    missing: str = field(
        default="other_game",
        metadata={
            "help": "A question with one unreadable verdict: other_game scores it from its other "
            "game; exclude leaves it out. Both unreadable: always left out (and counted).",
            "choices": MISSING_POLICIES,
        },
    )
    batch_size: int = field(
        default=16,
        metadata={"help": "Prompts handed to an engine at once (progress granularity)."},
    )

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        for name in (
            "max_new_tokens",
            "judge_max_new_tokens",
            "conclude_max_new_tokens",
            "bootstrap_rounds",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.temperature < 0 or self.judge_temperature < 0:
            raise ValueError("temperatures must be 0 (greedy) or more")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if self.missing not in MISSING_POLICIES:
            raise ValueError(
                f"missing {self.missing!r} is unknown; choose one of {', '.join(MISSING_POLICIES)}"
            )

    def answer_params(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_new_tokens,
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
        )

    def judge_params(self, max_tokens: int) -> SamplingParams:
        return SamplingParams(
            temperature=self.judge_temperature,
            top_p=self.top_p,
            max_tokens=max_tokens,
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
        )


@dataclass
class Role:
    """One of the three models: a display name and the configuration that loads it."""

    name: str
    config: ModelConfig


Loader = Callable[["ModelConfig"], "LLM"]


def _default_loader(cfg: ModelConfig) -> LLM:
    from selfalign.llm.base import load_llm

    return load_llm(cfg)


class _Engines:
    """Holds one engine at a time; a role whose configuration equals the held one reuses it."""

    def __init__(self, load: Loader) -> None:
        self._load = load
        self._config: ModelConfig | None = None
        self._llm: LLM | None = None

    def get(self, cfg: ModelConfig) -> LLM:
        if self._llm is not None and self._config == cfg:
            return self._llm
        self.release()
        self._llm, self._config = self._load(cfg), cfg
        return self._llm

    def release(self) -> None:
        if self._llm is None:
            return
        self._llm = self._config = None
        gc.collect()
        torch = sys.modules.get("torch")
        # Only when torch is loaded already: the openai backend never imports it.
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass
class ArenaReport:
    """A whole arena run: summary.json's content and one result per question."""

    summary: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)


def _game_record(game: Game) -> dict[str, Any]:
    return asdict(game)


def score_results(
    questions: Sequence[ArenaQuestion],
    games: Sequence[tuple[Game, Game]],
    cfg: ArenaConfig,
) -> tuple[list[str], dict[str, Any]]:
    """Per-question outcomes, and the statistics overall and per category, language, difficulty."""
    outcomes = [outcome([g.points for g in pair], cfg.missing)[0] for pair in games]
    kw = {"rounds": cfg.bootstrap_rounds, "seed": cfg.seed}
    groups = {
        "category": [((q.category,), o) for q, o in zip(questions, outcomes, strict=True)],
        "language": [(q.languages, o) for q, o in zip(questions, outcomes, strict=True)],
        "difficulty": [((q.difficulty,), o) for q, o in zip(questions, outcomes, strict=True)],
    }
    statistics: dict[str, Any] = {"overall": stats(outcomes, **kw).to_dict()}
    for name, keyed in groups.items():
        statistics[f"by_{name}"] = {k: s.to_dict() for k, s in grouped(keyed, **kw).items()}
    return outcomes, statistics


def evaluate_arena(
    questions: QuestionSet,
    cfg: ArenaConfig,
    *,
    model: Role,
    baseline: Role | None,
    judge: Role,
    out: Path | None = None,
    progress: ProgressSink | None = None,
    load: Loader | None = None,
) -> ArenaReport:
    """Answer, judge and score every question; write the report to ``out`` when given.

    ``baseline`` is None when the questions carry the baseline's answers
    (``QuestionSet.baseline_column``).
    """
    items = questions.questions
    if not items:
        raise ValueError(
            f"no usable question in {questions.path} "
            f"({len(questions.skipped)} skipped; see the warnings for why)"
        )
    if baseline is None and questions.baseline_column is None:
        raise ValueError(
            "no baseline: pass --baseline MODEL, or --baseline-column COLUMN when the "
            "questions file holds the baseline's answers"
        )
    engines = _Engines(load or _default_loader)
    answer_params = cfg.answer_params()
    seconds: dict[str, float] = {}
    tokens: dict[str, int] = {}
    generated: dict[str, list[tuple[str, str, int]]] = {}

    def answer(role_key: str, role: Role) -> None:
        start = time.monotonic()
        llm = engines.get(role.config)
        generated[role_key] = generate_answers(
            llm,
            items,
            answer_params,
            role.config.mode,
            batch_size=cfg.batch_size,
            progress=progress,
            description=f"arena: {role_key} answering",
        )
        seconds[role_key] = round(time.monotonic() - start, 2)
        tokens[role_key] = sum(t for _, _, t in generated[role_key])

    # The role that shares the judge's engine goes last, so it is loaded once.
    order: list[tuple[str, Role]] = [("model", model)]
    if baseline is not None:
        if baseline.config == judge.config or model.config != judge.config:
            order.append(("baseline", baseline))
        else:
            order.insert(0, ("baseline", baseline))
    try:
        for key, role in order:
            answer(key, role)
        model_answers = [text for text, _, _ in generated["model"]]
        if baseline is not None:
            baseline_answers = [text for text, _, _ in generated["baseline"]]
        else:
            baseline_answers = [q.baseline_answer or "" for q in items]
        start = time.monotonic()
        games = judge_games(
            engines.get(judge.config),
            items,
            model_answers,
            baseline_answers,
            cfg.judge_params(cfg.judge_max_new_tokens),
            cfg.judge_params(cfg.conclude_max_new_tokens),
            judge.config.mode,
            conclude_prefill=cfg.conclude_prefill,
            batch_size=cfg.batch_size,
            progress=progress,
        )
    finally:
        engines.release()
    seconds["judge"] = round(time.monotonic() - start, 2)
    tokens["judge"] = sum(g.judge_tokens for pair in games for g in pair)

    outcomes, statistics = score_results(items, games, cfg)
    results = []
    for i, (question, pair, result) in enumerate(zip(items, games, outcomes, strict=True)):
        record: dict[str, Any] = {
            "id": question.id,
            "category": question.category,
            "languages": list(question.languages),
            "difficulty": question.difficulty,
            "messages": question.chat(),
            "model_answer": model_answers[i],
            "baseline_answer": baseline_answers[i],
            "model_finish_reason": generated["model"][i][1],
            "games": [_game_record(g) for g in pair],
            "points": outcome([g.points for g in pair], cfg.missing)[1],
            "outcome": result,
        }
        if baseline is not None:
            record["baseline_finish_reason"] = generated["baseline"][i][1]
        results.append(record)

    all_games = [g for pair in games for g in pair]
    baseline_name = baseline.name if baseline is not None else f"column:{questions.baseline_column}"
    summary: dict[str, Any] = {
        "benchmark": BENCHMARK,
        "model": model.name,
        "baseline": baseline_name,
        "judge": judge.name,
        "backends": {
            "model": model.config.backend,
            "baseline": baseline.config.backend if baseline is not None else None,
            "judge": judge.config.backend,
        },
        "questions_file": questions.path,
        "questions": len(items),
        "skipped_questions": [asdict(s) for s in questions.skipped],
        **statistics,
        "games": {
            "total": len(all_games),
            "verdicts": _count(g.verdict or "missing" for g in all_games),
            "needed_follow_up": sum(g.conclude_reply is not None for g in all_games),
            "missing": sum(g.verdict is None for g in all_games),
            "judge_hit_max_tokens": sum(g.hit_max_tokens for g in all_games),
        },
        "answers_hit_max_tokens": {
            key: sum(finish == "length" for _, finish, _ in values)
            for key, values in generated.items()
        },
        "generated_tokens": tokens,
        "seconds": seconds,
        "settings": asdict(cfg),
    }
    report = ArenaReport(summary=summary, results=results)
    if out is not None:
        write_report(report, out)
    overall = statistics["overall"]
    logger.info(
        "arena %s vs %s: score %s over %d questions", model.name, baseline_name,
        overall["score"], overall["n"],
    )
    return report


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def write_report(report: ArenaReport, out: Path) -> None:
    """``results.jsonl`` and ``summary.json`` into ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_FILE, "".join(dumps_line(r) for r in report.results))
    atomic_write_text(out / SUMMARY_FILE, json.dumps(report.summary, indent=2) + "\n")


def run(
    cfg: ArenaConfig,
    *,
    model: Role,
    baseline: Role | None,
    judge: Role,
    out: Path | None = None,
    progress: ProgressSink | None = None,
    load: Loader | None = None,
) -> ArenaReport:
    """Load the questions ``cfg`` names, then `evaluate_arena`."""
    if baseline is None and cfg.baseline_column is None:
        raise ValueError(
            "no baseline: pass --baseline MODEL, or --baseline-column COLUMN "
            f"(or {AUTO_BASELINE}) when the questions file holds the baseline's answers"
        )
    column = cfg.baseline_column if baseline is None else None
    questions = load_questions(cfg.questions, baseline_column=column, limit=cfg.limit)
    return evaluate_arena(
        questions, cfg, model=model, baseline=baseline, judge=judge, out=out,
        progress=progress, load=load,
    )


# -- side by side ----------------------------------------------------------------------


def is_arena_summary(summary: dict[str, Any]) -> bool:
    """Whether a parsed ``summary.json`` comes from the arena (for a shared ``compare``)."""
    return summary.get("benchmark") == BENCHMARK


def is_arena_run(path: Path) -> bool:
    """Whether ``path`` (a run directory or its ``summary.json``) holds an arena run."""
    file = path / SUMMARY_FILE if path.is_dir() else path
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(summary, dict) and is_arena_summary(summary)


@dataclass
class ArenaRun:
    """One arena run read back: who played, the statistics, the outcome per question."""

    path: Path
    model: str
    baseline: str
    judge: str
    overall: ArenaStats
    groups: dict[str, dict[str, ArenaStats]]
    outcomes: dict[str, str]


@dataclass
class ArenaComparison:
    """Two or more arena runs side by side, and which questions changed between the first two."""

    runs: list[ArenaRun]
    improved: list[str] = field(default_factory=list)
    """Questions whose outcome got better from the first run to the second (loss → tie → win)."""
    worsened: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [r.model for r in self.runs]

    def same_opponent(self) -> bool:
        """Whether every run faced the same baseline and judge (else the scores don't line up)."""
        return len({(r.baseline, r.judge) for r in self.runs}) == 1


def read_run(path: Path) -> ArenaRun:
    """An arena run from its directory or its ``summary.json``."""
    file = path / SUMMARY_FILE if path.is_dir() else path
    summary = json.loads(file.read_text(encoding="utf-8"))
    if not is_arena_summary(summary):
        raise ValueError(f"{file} is not an arena summary (benchmark: {summary.get('benchmark')})")
    groups = {
        name: {k: stats_from_dict(v) for k, v in summary.get(f"by_{name}", {}).items()}
        for name in GROUPINGS
    }
    outcomes: dict[str, str] = {}
    results = file.parent / RESULTS_FILE
    if results.is_file():
        outcomes = {str(r["id"]): str(r["outcome"]) for r in read_jsonl(results) if "id" in r}
    return ArenaRun(
        path=file.parent,
        model=str(summary.get("model") or file.parent),
        baseline=str(summary.get("baseline")),
        judge=str(summary.get("judge")),
        overall=stats_from_dict(summary["overall"]),
        groups=groups,
        outcomes=outcomes,
    )


_RANK = {"loss": 0, "tie": 1, "win": 2}


def compare(paths: Sequence[Path]) -> ArenaComparison:
    """Read arena runs (directories or summary.json files) and line them up, first as reference."""
    runs = [read_run(p) for p in paths]
    comparison = ArenaComparison(runs=runs)
    if len(runs) >= 2:
        before, after = runs[0].outcomes, runs[1].outcomes
        common = [q for q in before if q in after and before[q] in _RANK and after[q] in _RANK]
        comparison.improved = [q for q in common if _RANK[after[q]] > _RANK[before[q]]]
        comparison.worsened = [q for q in common if _RANK[after[q]] < _RANK[before[q]]]
    return comparison
