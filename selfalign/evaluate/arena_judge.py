"""The arena judge: its prompt, two games per question with positions swapped, the verdicts.

Game 1 shows the evaluated model's answer as A and the baseline's as B; game 2
swaps them. A judge that prefers whatever comes first therefore gives one game to
each side and the question ends tied: position bias cancels instead of scoring.

The judge answers the question itself before it compares (a judge that has worked
the problem catches wrong answers that read well), then ends with one of five
labels. A reply with no readable label gets one follow-up turn that asks only for
the label; if that fails too, the game's verdict is missing (``None``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from selfalign.evaluate.arena_questions import ArenaQuestion
from selfalign.evaluate.arena_verdict import A_POINTS, parse_verdict
from selfalign.llm.base import LLM, Message, Prompt, SamplingParams, is_prefill
from selfalign.stage import NullProgress, ProgressSink

logger = logging.getLogger(__name__)

JUDGE_SYSTEM = """\
You review answers that two AI assistants gave to a programmer's question. Decide which \
answer serves the programmer better.

Work in this order:
1. Answer the question yourself first, briefly: the fix, the code or the explanation you \
would give. Do this before you read the assistants' answers closely.
2. Check each assistant's answer against yours. Correctness comes first: a wrong diagnosis, \
code that would not run or gives wrong results, or a false claim is a serious fault, however \
well it is written. Say what each answer gets wrong.
3. Then judge whether each answer does what was asked, covers what matters, and is clear and \
to the point. Extra length is not a merit in itself.

Do not let the order in which the answers appear, their length, or the assistants' names \
sway you.

Finish with your verdict on its own line, as exactly one of these labels:
[[A>>B]]  Assistant A's answer is much better
[[A>B]]   Assistant A's answer is a bit better
[[A=B]]   both are about equally good (or equally bad)
[[B>A]]   Assistant B's answer is a bit better
[[B>>A]]  Assistant B's answer is much better
For example: "Verdict: [[B>A]]"."""

JUDGE_USER = """\
<question>
{question}
</question>

<assistant_a_answer>
{answer_a}
</assistant_a_answer>

<assistant_b_answer>
{answer_b}
</assistant_b_answer>

Answer the question yourself first, then compare the two answers with yours, then end with \
your verdict: one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]."""
# The label list is repeated after the answers: a backend that must cut a long prompt
# cuts it from the left, and the closing instruction is what has to survive.

CONCLUDE = (
    "You did not end with a verdict label. Reply with only one of these labels, nothing else: "
    "[[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]."
)

MODEL_FIRST, MODEL_SECOND = "A", "B"
"""Where the evaluated model's answer stands in game 1 and in game 2."""
GAME_POSITIONS = (MODEL_FIRST, MODEL_SECOND)

TRANSCRIPT_STOP = ("\n### User", "\n### System")
"""Where a completion-mode model starts writing the next turn itself."""


def render(messages: Sequence[Message], mode: str) -> Prompt:
    """A chat prompt as the backend takes it: messages (chat) or a plain transcript (completion).

    Completion mode is for base models with no chat template: each turn under a
    ``### Role`` heading, ending with an open ``### Assistant`` heading, or with the
    partial assistant message of a prefill.
    """
    if mode == "chat":
        return [dict(m) for m in messages]
    parts = [f"### {m['role'].capitalize()}\n{m['content']}" for m in messages]
    if is_prefill(messages):
        return "\n\n".join(parts)
    return "\n\n".join(parts) + "\n\n### Assistant\n"


def judge_messages(question: ArenaQuestion, answer_a: str, answer_b: str) -> list[Message]:
    """The judge's conversation for one game."""
    user = JUDGE_USER.format(question=question.text(), answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def model_points(verdict: str | None, model_position: str) -> int | None:
    """The game's points from the evaluated model's side: +2, +1, 0, -1, -2 (None: missing)."""
    if verdict is None:
        return None
    points = A_POINTS[verdict]
    return points if model_position == "A" else -points


@dataclass
class Game:
    """One judgment: who stood where, what the judge wrote, the verdict and the model's points."""

    model_position: str
    judgment: str
    verdict: str | None
    points: int | None
    conclude_reply: str | None = None
    """The judge's answer to the follow-up turn (prefill included), when its first reply had
    no label."""
    judge_tokens: int = 0
    hit_max_tokens: bool = False


def _chunks(items: Sequence[Prompt], size: int) -> list[Sequence[Prompt]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _generate(
    llm: LLM,
    prompts: Sequence[Prompt],
    params: SamplingParams,
    batch_size: int,
    progress: ProgressSink,
    description: str,
) -> list[tuple[str, str, int]]:
    """(text, finish_reason, tokens) for every prompt, in chunks that move the progress bar."""
    out: list[tuple[str, str, int]] = []
    progress.start(description, total=len(prompts))
    try:
        for chunk in _chunks(prompts, batch_size):
            generations = llm.generate(list(chunk), params)
            firsts = [gens[0] for gens in generations]
            out.extend((g.text, g.finish_reason, g.completion_tokens) for g in firsts)
            tokens = sum(g.completion_tokens for g in firsts)
            progress.advance(len(chunk), generated_tokens=float(tokens))
    finally:
        progress.stop()
    return out


def generate_answers(
    llm: LLM,
    questions: Sequence[ArenaQuestion],
    params: SamplingParams,
    mode: str,
    *,
    batch_size: int = 16,
    progress: ProgressSink | None = None,
    description: str = "arena: answering",
) -> list[tuple[str, str, int]]:
    """One answer per question: (text, finish_reason, tokens), in question order."""
    if mode == "completion":
        params = _with_stops(params, TRANSCRIPT_STOP)
    prompts = [render(q.chat(), mode) for q in questions]
    return _generate(llm, prompts, params, batch_size, progress or NullProgress(), description)


def _with_stops(params: SamplingParams, stops: tuple[str, ...]) -> SamplingParams:
    return SamplingParams(
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        n=1,
        stop=tuple(params.stop) + stops,
        seed=params.seed,
        repetition_penalty=params.repetition_penalty,
    )


def judge_games(
    llm: LLM,
    questions: Sequence[ArenaQuestion],
    model_answers: Sequence[str],
    baseline_answers: Sequence[str],
    params: SamplingParams,
    conclude_params: SamplingParams,
    mode: str,
    *,
    conclude_prefill: str = "",
    batch_size: int = 16,
    progress: ProgressSink | None = None,
) -> list[tuple[Game, Game]]:
    """Both games of every question, in question order.

    All first replies are generated together, then one follow-up batch for the
    replies that had no readable verdict. ``conclude_prefill`` starts the judge's
    follow-up reply (e.g. ``"Verdict: [["``), so that its next words are a label.
    """
    sink = progress or NullProgress()
    if mode == "completion":
        params = _with_stops(params, TRANSCRIPT_STOP)
        conclude_params = _with_stops(conclude_params, TRANSCRIPT_STOP)
    conversations: list[list[Message]] = []
    for question, mine, theirs in zip(questions, model_answers, baseline_answers, strict=True):
        conversations.append(judge_messages(question, mine, theirs))  # model is A
        conversations.append(judge_messages(question, theirs, mine))  # model is B
    first = _generate(
        llm, [render(c, mode) for c in conversations], params, batch_size, sink, "arena: judging"
    )
    games = [
        Game(
            model_position=GAME_POSITIONS[i % 2],
            judgment=text,
            verdict=parse_verdict(text),
            points=None,
            judge_tokens=tokens,
            hit_max_tokens=finish == "length",
        )
        for i, (text, finish, tokens) in enumerate(first)
    ]
    retry = [i for i, game in enumerate(games) if game.verdict is None]
    if retry:
        prefill = [{"role": "assistant", "content": conclude_prefill}] if conclude_prefill else []
        follow_ups = [
            render(
                conversations[i]
                + [
                    {"role": "assistant", "content": games[i].judgment},
                    {"role": "user", "content": CONCLUDE},
                ]
                + prefill,
                mode,
            )
            for i in retry
        ]
        second = _generate(
            llm, follow_ups, conclude_params, batch_size, sink, "arena: asking for verdicts"
        )
        for i, (text, _, tokens) in zip(retry, second, strict=True):
            games[i].conclude_reply = conclude_prefill + text
            games[i].verdict = parse_verdict(conclude_prefill + text)
            games[i].judge_tokens += tokens
    for game in games:
        game.points = model_points(game.verdict, game.model_position)
    missing = sum(g.verdict is None for g in games)
    logger.info(
        "arena judge: %d games, %d needed a follow-up, %d without a verdict",
        len(games),
        len(retry),
        missing,
    )
    return [(games[i], games[i + 1]) for i in range(0, len(games), 2)]
