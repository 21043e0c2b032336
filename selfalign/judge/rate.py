"""Judge a batch of tasks: one engine call for every (task, preference, round), one for retries.

Per task, the answers to judge are chosen (``choose_candidates``), every
preference gets one call with all of them in a seeded order (two with swap), the
outputs are parsed, the unreadable ones are retried together once with the start
of the format written for the model, and what is still unreadable is rejected with
its reason. The result is one ``Judgments`` record per task.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from selfalign.judge.config import JudgeConfig
from selfalign.judge.parse import NO_OUTPUT, ParsedJudgment, parse_judgment
from selfalign.judge.prompt import JudgePrompts, cut, prefill_text, presentation_orders
from selfalign.llm.base import LLM, Generation, Prompt
from selfalign.records import Judgments, stable_id
from selfalign.store import Rejection

logger = logging.getLogger(__name__)

NO_RESPONSES = "no_responses"
"""Task-level rejection: none of the task's answers could be judged."""
OVER_CAP, PARSE_ERROR, EMPTY_RESPONSE, DUPLICATE_RESPONSE = (
    "over_cap",
    "parse_error",
    "empty_response",
    "duplicate_response",
)
SKIP_REASONS = (OVER_CAP, PARSE_ERROR, EMPTY_RESPONSE, DUPLICATE_RESPONSE)


@dataclass(frozen=True)
class Candidate:
    """One answer that may be judged: its attempt, its text and its verdict."""

    attempt_id: str
    response: str
    status: str = ""
    """The verdict status (``pass``, ``fail``, ...); '' when the answer was not executed."""
    sample_index: int = 0
    parse_error: str | None = None


@dataclass(frozen=True)
class JudgeTask:
    """A task to judge: its id, its instruction and its answers."""

    task_id: str
    instruction: str
    candidates: tuple[Candidate, ...]


@dataclass
class JudgeBatch:
    """What one batch gives the stage: records, tasks with nothing to judge, counters."""

    records: list[Judgments] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def choose_candidates(
    candidates: Sequence[Candidate], cfg: JudgeConfig
) -> tuple[list[Candidate], list[dict[str, str]]]:
    """The answers to judge (in sample order) and, for each one left out, why.

    Empty answers, answers with a parse error (``skip_parse_errors``) and exact
    repeats of an earlier answer are left out; of the rest at most
    ``max_responses`` are kept, passing and failing answers taken in turn so that
    both sides of an execution pair get rated.
    """
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    usable: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (c.sample_index, c.attempt_id)):
        text = re.sub(r"\s+", " ", cand.response).strip()
        if not text:
            skipped.append(_skip(cand, EMPTY_RESPONSE))
        elif cfg.skip_parse_errors and cand.parse_error:
            skipped.append(_skip(cand, PARSE_ERROR, cand.parse_error))
        elif text in seen:
            skipped.append(_skip(cand, DUPLICATE_RESPONSE, f"same text as {seen[text]}"))
        else:
            seen[text] = cand.attempt_id
            usable.append(cand)
    passing = [c for c in usable if c.status == "pass"]
    others = [c for c in usable if c.status != "pass"]
    kept: list[Candidate] = []
    while len(kept) < cfg.max_responses and (passing or others):
        for side in (passing, others):
            if side and len(kept) < cfg.max_responses:
                kept.append(side.pop(0))
    over = [c for c in usable if c not in kept]
    skipped += [_skip(c, OVER_CAP, f"max_responses = {cfg.max_responses}") for c in over]
    kept.sort(key=lambda c: (c.sample_index, c.attempt_id))
    return kept, skipped


def _skip(cand: Candidate, reason: str, detail: str = "") -> dict[str, str]:
    return {"attempt_id": cand.attempt_id, "reason": reason, "detail": detail}


def _hash(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class _Call:
    """One judge call of one task: which preference and round, in which order."""

    task: int
    preference: str
    round: int
    order: list[int]
    texts: list[str]
    """The responses as shown, in ``order``."""
    prompt: Prompt
    parsed: ParsedJudgment | None = None
    generation: Generation | None = None
    first: tuple[str, str, str] | None = None
    """(raw output, reason, finish reason) of the first try when the call was retried."""


def _text(gens: list[Generation], prefilled: bool) -> Generation:
    if not gens:
        return Generation("", "stop", 0)
    g = gens[0]
    return Generation(
        (prefill_text() if prefilled else "") + g.text, g.finish_reason, g.completion_tokens
    )


def judge_batch(
    llm: LLM,
    tasks: Sequence[JudgeTask],
    cfg: JudgeConfig,
    prompts: JudgePrompts,
    model_key: str,
) -> JudgeBatch:
    """Rate every task of the batch on ``cfg.preferences``; one record per judgeable task.

    All first tries go to ``llm.generate`` in one call, all retries in a second.
    A task with no answer to judge becomes a ``no_responses`` rejection.
    """
    out = JudgeBatch()
    metrics: Counter[str] = Counter()
    chosen: list[tuple[JudgeTask, list[Candidate], list[dict[str, str]]]] = []
    for task in tasks:
        kept, skipped = choose_candidates(task.candidates, cfg)
        for s in skipped:
            metrics[f"responses_skipped_{s['reason']}"] += 1
        if not kept:
            reasons = Counter(s["reason"] for s in skipped)
            detail = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) or "no answers"
            out.rejections.append(Rejection(id=task.task_id, reason=NO_RESPONSES, detail=detail))
            continue
        chosen.append((task, kept, skipped))
        metrics["responses_judged"] += len(kept)

    calls: list[_Call] = []
    for t_index, (task, kept, _) in enumerate(chosen):
        for preference in cfg.preferences:
            orders = presentation_orders(
                cfg.seed, task.task_id, preference, len(kept), cfg.rounds, cfg.swap_order
            )
            for round_index, order in enumerate(orders):
                texts = [cut(kept[i].response, cfg.max_response_chars) for i in order]
                prompt = prompts.render(task.instruction, texts, preference, prefill=cfg.prefill)
                calls.append(_Call(t_index, preference, round_index, order, texts, prompt))

    stop = prompts.stop
    if calls:
        gens = llm.generate([c.prompt for c in calls], cfg.sampling(stop))
        metrics["judge_calls"] += len(calls)
        for call, g in zip(calls, gens, strict=True):
            call.generation = _text(g, cfg.prefill)
            call.parsed = parse_judgment(
                call.generation.text, len(call.order), call.generation.finish_reason
            )
            metrics["judge_completion_tokens"] += call.generation.completion_tokens

    retries = [c for c in calls if c.parsed is not None and not c.parsed.ok]
    if retries:
        # The retry starts the format for the model: a judge that wandered off on
        # its first try (or, at temperature 0, would wander off again) is put back on it.
        retry_prompts = [
            prompts.render(chosen[c.task][0].instruction, c.texts, c.preference, prefill=True)
            for c in retries
        ]
        gens = llm.generate(retry_prompts, cfg.retry_sampling(stop))
        metrics["judge_retries"] += len(retries)
        for call, g in zip(retries, gens, strict=True):
            assert call.generation is not None and call.parsed is not None
            call.first = (
                call.generation.text,
                call.parsed.reason or "",
                call.generation.finish_reason,
            )
            call.generation = _text(g, True)
            call.parsed = parse_judgment(
                call.generation.text, len(call.order), call.generation.finish_reason
            )
            metrics["judge_completion_tokens"] += call.generation.completion_tokens
            if call.parsed.ok:
                metrics["judgments_ok_after_retry"] += 1

    by_task: dict[int, list[_Call]] = {}
    for call in calls:
        by_task.setdefault(call.task, []).append(call)
    for t_index, (task, kept, skipped) in enumerate(chosen):
        record = _record(task, kept, skipped, by_task.get(t_index, []), cfg, model_key)
        out.records.append(record)
        for r in record.rejected:
            metrics[f"judgments_rejected_{r['reason']}"] += 1
        metrics["judgments_ok"] += sum(1 for c in record.calls if not c["reason"])
        metrics["ratings_missing"] += sum(
            1 for entry in record.ratings for v in entry["ratings"].values() if v is None
        )
    out.metrics = dict(metrics)
    rejected = sum(v for k, v in metrics.items() if k.startswith("judgments_rejected_"))
    logger.info(
        "judged %d tasks: %d calls, %d retried, %d rejected after the retry",
        len(chosen),
        metrics["judge_calls"],
        metrics["judge_retries"],
        rejected,
    )
    return out


def _record(
    task: JudgeTask,
    kept: list[Candidate],
    skipped: list[dict[str, str]],
    calls: list[_Call],
    cfg: JudgeConfig,
    model_key: str,
) -> Judgments:
    attempt_ids = [c.attempt_id for c in kept]
    values: dict[tuple[int, str], list[float]] = {}
    rationales: dict[tuple[int, str], str] = {}
    call_rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for call in calls:
        parsed, gen = call.parsed, call.generation
        assert parsed is not None and gen is not None
        if parsed.ok:
            for position, index in enumerate(call.order):
                rating = parsed.ratings[position]
                assert rating is not None
                values.setdefault((index, call.preference), []).append(rating)
                if parsed.rationales[position]:
                    rationales.setdefault((index, call.preference), parsed.rationales[position])
        else:
            rejected.append(
                {
                    "preference": call.preference,
                    "round": call.round,
                    "reason": parsed.reason or NO_OUTPUT,
                    "detail": parsed.detail,
                }
            )
        call_rows.append(
            {
                "preference": call.preference,
                "round": call.round,
                "order": [attempt_ids[i] for i in call.order],
                "prompt_hash": _hash(call.prompt),
                "raw_output": gen.text,
                "finish_reason": gen.finish_reason,
                "completion_tokens": gen.completion_tokens,
                "shape": parsed.shape,
                "ratings": list(parsed.ratings),
                "reason": parsed.reason or "",
                "detail": parsed.detail,
                "retried": call.first is not None,
                "first_raw_output": call.first[0] if call.first else "",
                "first_reason": call.first[1] if call.first else "",
                "first_finish_reason": call.first[2] if call.first else "",
            }
        )
    entries = []
    for index, cand in enumerate(kept):
        ratings: dict[str, float | None] = {}
        for preference in cfg.preferences:
            got = values.get((index, preference))
            ratings[preference] = sum(got) / len(got) if got else None
        present = [v for v in ratings.values() if v is not None]
        entries.append(
            {
                "attempt_id": cand.attempt_id,
                "ratings": ratings,
                "rationales": {p: rationales.get((index, p), "") for p in cfg.preferences},
                "mean_rating": sum(present) / len(present) if present else None,
            }
        )
    prompt_hash = _hash([c.prompt for c in calls])
    all_ids = sorted(c.attempt_id for c in task.candidates)
    params = cfg.id_params()
    return Judgments(
        id=stable_id("judgments", task.task_id, all_ids, model_key, prompt_hash, params),
        parent_id=task.task_id,
        task_id=task.task_id,
        judge_model=model_key,
        preferences=list(cfg.preferences),
        attempt_ids=attempt_ids,
        statuses=[c.status for c in kept],
        ratings=entries,
        calls=call_rows,
        rejected=rejected,
        skipped=skipped,
        prompt_hash=prompt_hash,
        params=params,
    )
