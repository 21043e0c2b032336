"""Parsing model outputs: concept lists (S→C), instructions (C→I), answers (I→R).

Parsers never raise on model output. Concept and instruction parsers return an
empty result for unusable text (the stage rejects the input with a reason); the
answer parser always returns what it could find plus a `parse_error` reason,
because malformed answers are kept as attempts for the preference pairs.

`echo_reason` tells an output that merely echoes its answer prefix or its prompt
(`echoed_prefix`, `echoed_prompt`) from one that answers: a server that ignored a
prefill once turned every concept list into the prefix line itself, silently.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from selfalign.llm.base import Prompt

# Echo reasons: the stage rejects the record (S→C, C→I) or marks the attempt (I→R).
ECHOED_PREFIX = "echoed_prefix"
ECHOED_PROMPT = "echoed_prompt"
ECHO_REASONS = (ECHOED_PREFIX, ECHOED_PROMPT)

# parse_error reasons, most severe first: an answer gets the first that applies.
TRUNCATED = "truncated"
UNCLOSED_FENCE = "unclosed_fence"
NO_CODE_BLOCK = "no_code_block"
NO_TESTS = "no_tests"
TESTS_WITHOUT_ASSERTS = "tests_without_asserts"
PARSE_ERRORS = (
    *ECHO_REASONS,
    TRUNCATED,
    UNCLOSED_FENCE,
    NO_CODE_BLOCK,
    NO_TESTS,
    TESTS_WITHOUT_ASSERTS,
)

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n`]*$")
_TESTS_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*)?(?:unit[ \t]+)?tests?(?:[ \t]+cases?)?[ \t]*(?:\*\*)?:?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
PY_LANGS = frozenset({"", "python", "py", "python3", "py3"})
_LIST_PREFIX = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|\(\d+\))\s+")
_LABEL = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*)?(?:key\s+)?concepts?(?:\*\*)?\s*[:：-]?\s*", re.IGNORECASE
)
_INSTRUCTION_LABEL = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*)?(?:instruction|task)(?:\*\*)?\s*:?\s*(?:\*\*)?\s*", re.IGNORECASE
)


# -- S→C -------------------------------------------------------------------------


def parse_concepts(
    text: str, max_concepts: int = 8, max_chars: int = 80, truncated: bool = False
) -> list[str]:
    """The concepts in a model's answer: a comma-separated line or a bulleted/numbered list.

    Duplicates (case-insensitive), code blocks and over-long phrases are dropped, and
    when the answer was `truncated` at the token limit its last, cut-off item too;
    an empty list means nothing usable.
    """
    text = _strip_code_blocks(text).strip()
    if not text:
        return []
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].rstrip().endswith(":") and not _LIST_PREFIX.match(lines[0]):
        # "The key concepts are:" introducing a list or a line is not itself a concept.
        lines = lines[1:]
    listed = [ln for ln in lines if _LIST_PREFIX.match(ln)]
    if len(listed) >= 2 or (listed and listed[0] is lines[0]):
        items = [_LIST_PREFIX.sub("", ln) for ln in listed]
    else:
        first = _LABEL.sub("", lines[0]) if _LABEL.match(lines[0]) and len(lines) > 0 else lines[0]
        if not first.strip() and len(lines) > 1:
            first = lines[1]
        items = re.split(r"[,;]", first)
    if truncated and len(items) > 1:
        items = items[:-1]
    concepts: list[str] = []
    seen: set[str] = set()
    for item in items:
        concept = _clean_concept(item)
        if not concept or len(concept) > max_chars or concept.lower() in seen:
            continue
        seen.add(concept.lower())
        concepts.append(concept)
        if len(concepts) >= max_concepts:
            break
    return concepts


def _clean_concept(item: str) -> str:
    # Markdown bold goes; `**kwargs` in a code span and dunder names stay.
    item = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"\1", item)
    # "Concept: explanation" and "concept - explanation" keep the concept only.
    item = re.split(r":\s|\s[-–—]\s", item, maxsplit=1)[0]
    item = item.strip().strip(".").strip()
    if item.startswith("`") and item.endswith("`") and len(item) > 2:
        item = item[1:-1]
    if item.lower().startswith(("and ", "or ")):
        item = item.split(" ", 1)[1]
    return item.strip()


def _strip_code_blocks(text: str) -> str:
    out, inside = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


# -- echoes (every stage) --------------------------------------------------------

_ALNUM = re.compile(r"[^\W_]")
# Case, markdown emphasis, code quotes and punctuation do not make a line new.
_NOISE = re.compile(r"[\s*`:.,;!-]+")
_WORDS = re.compile(r"[^\W_]+")
_RESTART_WORDS = 3


def echo_reason(
    text: str, prefix: str = "", prompt: Prompt | None = None, parsed: Sequence[str] = ()
) -> str | None:
    """Why ``text`` (``prefix`` + what the model wrote) merely echoes, or None if it does not.

    `echoed_prefix` when the model's own part has no letter or digit (the answer is only
    the prefix), starts the prefix over (a server opened a new turn instead of continuing
    it), or when every ``parsed`` item (concepts, the instruction) is a line of the
    prefix plus at most one word. `echoed_prompt` when every line the model wrote, fences
    aside, is a line of the prompt (its user turns, few-shot answers and system prompt;
    not the prefill).
    """
    generated = text[len(prefix) :] if prefix and text.startswith(prefix) else text
    if _ALNUM.search(prefix):
        if not _ALNUM.search(generated):
            return ECHOED_PREFIX
        head = prefix.lower().split()[:_RESTART_WORDS]
        if generated.lower().split()[: len(head)] == head:
            return ECHOED_PREFIX
        prefix_lines = [p for p in (_plain(ln) for ln in prefix.splitlines()) if p]
        items = [_plain(item) for item in parsed if _plain(item)]
        if items and all(_adds_little(item, prefix_lines) for item in items):
            return ECHOED_PREFIX
    if prompt is not None:
        written = [
            ln.strip() for ln in generated.splitlines() if ln.strip() and not _FENCE.match(ln)
        ]
        if written and set(written) <= _prompt_lines(prompt, prefix):
            return ECHOED_PROMPT
    return None


def _plain(line: str) -> str:
    return _NOISE.sub(" ", line.lower()).strip()


def _adds_little(item: str, prefix_lines: list[str]) -> bool:
    # "Write a Python function ```python": a fresh turn's code fence after the prefix.
    return any(
        item.startswith(line) and len(_WORDS.findall(item[len(line) :])) < 2
        for line in prefix_lines
    )


def _prompt_lines(prompt: Prompt, prefix: str) -> set[str]:
    if isinstance(prompt, str):
        # A completion prompt ends with the prefix, which the checks above handle.
        texts = [prompt[: -len(prefix)] if prefix and prompt.endswith(prefix) else prompt]
    else:
        last = len(prompt) - 1
        texts = [
            m.get("content", "")
            for i, m in enumerate(prompt)
            if not (i == last and m.get("role") == "assistant")
        ]
    return {ln.strip() for t in texts for ln in t.splitlines() if ln.strip()}


# -- C→I -------------------------------------------------------------------------

_SOLUTION_START = re.compile(
    r"^[ \t]*(?:(?:`{3,}|~{3,})[\w+#.-]*[ \t]*\n[ \t]*)?(?:async[ \t]+)?(?:def|class)[ \t]+\w",
    re.MULTILINE,
)
_DANGLING_HEADING = re.compile(
    r"(?:^|\n)[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?(?:for[ \t]+)?(?:example|examples|"
    r"solution|implementation|code)(?:[ \t]+usage)?(?:\*\*)?[ \t]*:?[ \t]*$",
    re.IGNORECASE,
)

_TRAILING_HEADING = re.compile(r"(?:^|\n)[ \t]*#{1,6}[ \t]+[^\n]*$")


def parse_instruction(text: str) -> str:
    """The task text: label and surrounding whitespace removed, trailing turn markers cut."""
    text = text.strip()
    text = _INSTRUCTION_LABEL.sub("", text, count=1) if _INSTRUCTION_LABEL.match(text) else text
    # A model that goes on to answer its own task starts a response section.
    cut = re.search(
        r"^\s*#{1,6}\s*(?:response|solution|answer)\b", text, re.IGNORECASE | re.MULTILINE
    )
    if cut:
        text = text[: cut.start()]
    # A model that solves its own task writes the code; the task ends before it.
    code = _SOLUTION_START.search(text)
    if code:
        text = text[: code.start()]
        text = _DANGLING_HEADING.sub("", text.rstrip())
    # A heading with nothing under it ("### Output") is where the model stopped.
    while (trail := _TRAILING_HEADING.search(text.rstrip())) is not None:
        text = text.rstrip()[: trail.start()]
    return text.strip()


# -- I→R -------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    code: str
    start: int
    """Character offset of the opening fence in the text."""
    closed: bool
    end: int
    """Character offset just past the closing fence's line (the text's end if unclosed)."""


@dataclass(frozen=True)
class ParsedAnswer:
    """An I→R answer split into the parts the execution stage and the dataset need."""

    response: str
    """The prose and code shown to a user (everything before the tests)."""
    solution: str
    tests: str
    parse_error: str | None


def code_blocks(text: str) -> list[CodeBlock]:
    """Fenced code blocks in order; an unclosed last block runs to the end of the text."""
    blocks: list[CodeBlock] = []
    open_fence: tuple[str, str, int, int] | None = None  # fence, lang, start, body start
    offset = 0
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line.rstrip("\r\n"))
        if m:
            fence, lang = m.group(1), m.group(2).lower()
            if open_fence is None:
                open_fence = (fence, lang, offset, offset + len(line))
            elif fence[0] == open_fence[0][0] and len(fence) >= len(open_fence[0]) and not lang:
                body = text[open_fence[3] : offset]
                end = offset + len(line)
                blocks.append(CodeBlock(open_fence[1], body, open_fence[2], True, end))
                open_fence = None
        offset += len(line)
    if open_fence is not None:
        blocks.append(
            CodeBlock(open_fence[1], text[open_fence[3] :], open_fence[2], False, len(text))
        )
    return blocks


def longest_valid_prefix(code: str) -> str:
    """The longest run of leading lines of ``code`` that parses (empty if none does).

    What is left of tests cut at the token limit: the complete statements."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        head = "\n".join(lines[:end])
        try:
            ast.parse(head)
        except SyntaxError:
            continue
        return head
    return ""


def first_statements(code: str, count: int) -> str:
    """The first ``count`` top-level statements of ``code`` (all of it if it has no
    more). Code that does not parse yields them from its longest parsable prefix, or
    comes back whole when not even the first statement parses."""
    if count <= 0:
        return code
    try:
        body = ast.parse(code).body
    except SyntaxError:
        head = longest_valid_prefix(code)
        if not head.strip():
            return code
        code, body = head, ast.parse(head).body
    if len(body) <= count:
        return code
    end = body[count - 1].end_lineno or 0
    return "\n".join(code.splitlines()[:end])


def has_assert(code: str) -> bool:
    return re.search(r"^\s*assert\b", code, re.MULTILINE) is not None


def _is_test_block(code: str) -> bool:
    lines = [
        ln.strip() for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    if not lines:
        return False
    asserts = sum(1 for ln in lines if ln.startswith("assert"))
    defines = any(ln.startswith(("def ", "class ")) and "test" not in ln.lower() for ln in lines)
    return asserts > 0 and not defines


def parse_answer(
    text: str, finish_reason: str = "stop", *, prefix: str = "", prompt: Prompt | None = None
) -> ParsedAnswer:
    """Split an answer into response, solution and tests, with the first problem found.

    The expected shape is prose with one ```python block, then a `### Tests` heading
    and a ```python block of asserts. Without the heading, a last block made of asserts
    counts as the tests. Given the answer ``prefix`` and the ``prompt``, an answer that
    merely echoes them gets `echoed_prefix` or `echoed_prompt` (see `echo_reason`).
    """
    heading = _TESTS_HEADING.search(text)
    blocks = code_blocks(text)
    python = [b for b in blocks if b.lang in PY_LANGS]
    if heading is not None:
        response = text[: heading.start()]
        solution_blocks = [b for b in python if b.start < heading.start()]
        test_blocks = [b for b in python if b.start >= heading.start()][:1]
    else:
        response = text
        solution_blocks = list(python)
        test_blocks = []
        if len(python) >= 2 and _is_test_block(python[-1].code):
            test_blocks = [python[-1]]
            solution_blocks = python[:-1]
            response = text[: python[-1].start]
    solution = "\n\n".join(b.code.strip("\n") for b in solution_blocks).strip("\n")
    tests = test_blocks[0].code.strip("\n") if test_blocks else ""
    error = echo_reason(text, prefix, prompt) or _shape_error(
        finish_reason, blocks, solution, tests
    )
    return ParsedAnswer(
        response=response.strip(), solution=solution, tests=tests, parse_error=error
    )


def _shape_error(
    finish_reason: str, blocks: list[CodeBlock], solution: str, tests: str
) -> str | None:
    if finish_reason == "length":
        return TRUNCATED
    if any(not b.closed for b in blocks):
        return UNCLOSED_FENCE
    if not solution.strip():
        return NO_CODE_BLOCK
    if not tests.strip():
        return NO_TESTS
    if not has_assert(tests):
        return TESTS_WITHOUT_ASSERTS
    return None
