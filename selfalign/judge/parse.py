"""Read a judge's answer back into one rating and rationale per presented response.

Judges deviate from the format they are given in predictable ways: markdown
(bold, headings, bullet lists, tables), ``Rating: 4/5``, ``[[4]]``, ``4 out of 5``,
JSON, responses in another order or numbered from 0, text before and after. Each
shape has its own reader; the first reader that finds a rating for every response
wins. Nothing is guessed: a rating that cannot be read stays missing, a rating off
the 1–5 scale is not rescaled, and two different ratings for one response are
ambiguous. The caller rejects (after one retry) any judgment with a missing rating.

Positions are the numbers the judge saw (``Response 1`` is position 0 of the
result); the caller maps them back to attempts through the recorded order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from selfalign.judge.rubrics import MAX_RATING, MIN_RATING

NO_OUTPUT = "judge_no_output"
"""The backend returned no text for the judge call."""
UNPARSEABLE = "judge_unparseable"
"""No rating for any response could be read."""
MISSING_RATING = "judge_missing_rating"
"""Some responses have a rating, others none (or an explicit N/A)."""
OUT_OF_RANGE = "judge_out_of_range"
"""A rating off the 1–5 scale (``0``, ``7``, ``8/10``): not rescaled, not kept."""
AMBIGUOUS = "judge_ambiguous"
"""Two different ratings for the same response."""
TRUNCATED = "judge_truncated"
"""The judgment hit max_tokens before every response was rated."""

REASONS = (NO_OUTPUT, UNPARSEABLE, MISSING_RATING, OUT_OF_RANGE, AMBIGUOUS, TRUNCATED)

MAX_RATIONALE_CHARS = 2000


@dataclass(frozen=True)
class ParsedJudgment:
    """One rating (or None) and one rationale per presented position, or why not."""

    ratings: tuple[float | None, ...]
    rationales: tuple[str, ...]
    reason: str | None = None
    """None when every position has a rating on the scale; else one of ``REASONS``."""
    detail: str = ""
    shape: str = "none"
    """Which reader produced the result: json, table, sections, inline, single or none."""

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class _Found:
    """One rating statement: the response number the judge wrote and what it said."""

    number: int
    value: float | None
    """The rating read, or None for an explicit N/A."""
    scale: int = MAX_RATING
    """The denominator written with the rating (``8/10``: 10); the scale if none."""
    rationale: str = ""


_NUMBER = r"\d+(?:\.\d+)?"
_NA = r"n/?a\b|none\b|null\b|unrated\b"
_KEYWORD = r"(?:rating|score|grade|rated|mark)s?\b"
# A rating is followed by an optional denominator and must not be the start of a
# range ("1-5") or of a longer number.
_TAIL = (
    r"(?:[ \t*_]*(?:/|out[ \t]+of)[ \t]*(?P<den>\d+))?"
    r"(?![ \t]*(?:[-–]|to\b)[ \t]*\d)(?![\d.]\d)"
)
_VALUE = rf"(?:(?P<v>{_NUMBER})|(?P<na>{_NA}))"
_SEP = r"[ \t*_`\"']*(?:[:=\-–]|\bis\b|\bof\b)?[ \t*_`]*\n?[ \t*_`\[(\"']*"
# Keyword ratings at the start of a line are the judge's own structured statements;
# anywhere else they may be prose ("a score of 3 would need ...").
_LINE_KEYWORD = re.compile(rf"^[ \t>*_\-+|#\"']*{_KEYWORD}{_SEP}{_VALUE}{_TAIL}", re.I | re.M)
_ANY_KEYWORD = re.compile(rf"\b{_KEYWORD}{_SEP}{_VALUE}{_TAIL}", re.I)
_DOUBLE_BRACKET = re.compile(rf"\[\[[ \t]*(?:(?P<v>{_NUMBER})|(?P<na>{_NA}))[ \t]*\]\]", re.I)
_FRACTION = re.compile(rf"(?<![\d.])(?P<v>{_NUMBER})[ \t]*(?:/|out[ \t]+of)[ \t]*(?P<den>\d+)\b")
# "Response 2: 4 - clear" : a bare number right after the heading, followed by the
# end of the line or punctuation, never by a word ("3 lines of code").
_LEADING = re.compile(
    rf"^[ \t*_:\-–|()\[\]]*(?:(?P<v>{_NUMBER})|(?P<na>{_NA})){_TAIL}[ \t*_\])]*(?:$|\n|[-–,;.|:(])",
    re.I,
)
_TIERS = (_LINE_KEYWORD, _ANY_KEYWORD, _DOUBLE_BRACKET, _FRACTION)

_LABEL = (
    r"(?:output[ \t]+for[ \t]+)?"
    r"(?:response|text|answer|candidate|solution|assistant|submission)"
)
_MARKER = re.compile(
    rf"^[ \t>#*_\-+|]*(?:\d+[.)][ \t]+)?[ \t*_\[<]*{_LABEL}s?[ \t]*(?:#|no\.?|number)?[ \t]*"
    r"\[?(?P<n>\d+)\]?(?![\d.]\d)(?P<rest>.*)$",
    re.I | re.M,
)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(?P<title>.*)$", re.M)
_RATIONALE_LABEL = re.compile(
    r"(?:rationale|reason(?:ing)?|explanation|justification|comments?|why)[ \t*_]*[:\-–][ \t*_]*",
    re.I,
)
_INLINE = re.compile(
    rf"\b{_LABEL}[ \t]*#?[ \t]*(?P<n>\d+)[ \t*_]*[:=\-–][ \t*_]*(?:{_KEYWORD}[ \t]*[:=]?[ \t*_]*)?"
    rf"{_VALUE}{_TAIL}",
    re.I,
)

_NUMBER_KEYS = (
    "response",
    "response_id",
    "response_number",
    "id",
    "index",
    "number",
    "position",
    "text",
    "answer",
    "candidate",
    "no",
)
_RATING_KEYS = ("rating", "score", "grade", "rate", "value")
_RATIONALE_KEYS = (
    "rationale",
    "reason",
    "reasoning",
    "explanation",
    "justification",
    "comment",
    "comments",
    "why",
    "feedback",
)
_LIST_KEYS = (
    "ratings",
    "responses",
    "evaluations",
    "results",
    "scores",
    "judgments",
    "judgements",
    "answers",
    "items",
    "assessments",
    "texts",
    "outputs",
)


def parse_judgment(text: str, count: int, finish_reason: str = "stop") -> ParsedJudgment:
    """The rating and rationale of each of ``count`` presented responses in ``text``.

    ``finish_reason`` ``length`` turns an incomplete parse into ``judge_truncated``.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not text.strip():
        return ParsedJudgment((None,) * count, ("",) * count, NO_OUTPUT, "empty output")
    readers: list[tuple[str, Callable[[str], list[_Found]]]] = [
        ("json", _from_json),
        ("table", lambda t: _from_tables(t, count)),
        ("sections", _from_sections),
        ("inline", _from_inline),
    ]
    if count == 1:
        readers.append(("single", _from_single))
    best: ParsedJudgment | None = None
    best_rated = -1
    for shape, reader in readers:
        found = reader(text)
        if not found:
            continue
        result = _resolve(found, count, shape, finish_reason)
        if result.ok:
            return result
        rated = sum(r is not None for r in result.ratings)
        if rated > best_rated:
            best, best_rated = result, rated
    if best is not None:
        return best
    reason = TRUNCATED if finish_reason == "length" else UNPARSEABLE
    return ParsedJudgment(
        (None,) * count, ("",) * count, reason, "no rating found in any known shape"
    )


# -- resolving what the readers found --------------------------------------------


def _resolve(found: list[_Found], count: int, shape: str, finish_reason: str) -> ParsedJudgment:
    numbers = {f.number for f in found}
    # Judges that count from 0 number the responses 0..count-1.
    shift = 1 if 0 in numbers and max(numbers) <= count - 1 else 0
    values: list[list[float]] = [[] for _ in range(count)]
    rationales: list[str] = [""] * count
    not_available = [False] * count
    out_of_range: list[str] = []
    stray: set[int] = set()
    for f in found:
        pos = f.number + shift - 1
        if not 0 <= pos < count:
            stray.add(f.number)
            continue
        if f.value is None:
            not_available[pos] = True
        elif f.scale != MAX_RATING or not MIN_RATING <= f.value <= MAX_RATING:
            shown = f"{f.value:g}" + (f"/{f.scale}" if f.scale != MAX_RATING else "")
            out_of_range.append(f"response {pos + 1}: {shown}")
            continue
        else:
            values[pos].append(f.value)
        if f.rationale and not rationales[pos]:
            rationales[pos] = f.rationale
    ratings: list[float | None] = [None] * count
    ambiguous: list[str] = []
    for pos, vals in enumerate(values):
        distinct = sorted(set(vals))
        if len(distinct) == 1:
            ratings[pos] = distinct[0]
        elif distinct:
            ambiguous.append(f"response {pos + 1}: " + " vs ".join(f"{v:g}" for v in distinct))
    missing = [pos + 1 for pos, r in enumerate(ratings) if r is None]
    notes = []
    if shift:
        notes.append("numbered from 0")
    if stray:
        notes.append("mentions response " + ", ".join(str(n) for n in sorted(stray)))
    if not missing:
        return ParsedJudgment(tuple(ratings), tuple(rationales), None, "; ".join(notes), shape)
    if out_of_range:
        reason, what = OUT_OF_RANGE, "off the 1-5 scale: " + ", ".join(out_of_range)
    elif ambiguous:
        reason, what = AMBIGUOUS, "conflicting ratings: " + ", ".join(ambiguous)
    elif finish_reason == "length":
        reason, what = TRUNCATED, "cut at max_tokens"
    elif len(missing) == count and not any(not_available):
        reason, what = UNPARSEABLE, "no rating readable"
    else:
        reason, what = MISSING_RATING, ""
    na = [pos + 1 for pos in range(count) if not_available[pos] and ratings[pos] is None]
    missing_note = "no rating for response " + ", ".join(str(n) for n in missing)
    if na:
        missing_note += " (N/A for " + ", ".join(str(n) for n in na) + ")"
    detail = "; ".join(x for x in (what, missing_note, *notes) if x)
    return ParsedJudgment(tuple(ratings), tuple(rationales), reason, detail, shape)


# -- reading one rating out of a piece of text -----------------------------------


def _match_value(m: re.Match[str]) -> tuple[float | None, int]:
    den = m.groupdict().get("den")
    if m.group("v") is None:
        return None, MAX_RATING
    return float(m.group("v")), int(den) if den else MAX_RATING


def read_rating(text: str) -> tuple[list[tuple[float | None, int]], str]:
    """Every rating statement of the most structured kind found in ``text``, and the
    text left for the rationale (the statements cut out).

    Kinds, most structured first: ``Rating: 4`` opening a line, ``rating/score ... 4``
    anywhere, ``[[4]]``, ``4/5`` or ``4 out of 5``, and a bare number opening the text.
    """
    for tier in _TIERS:
        matches = list(tier.finditer(text))
        if matches:
            rest = tier.sub(" ", text)
            return [_match_value(m) for m in matches], rest
    m = _LEADING.match(text)
    if m:
        return [_match_value(m)], text[m.end() :]
    return [], text


def _rationale(text: str) -> str:
    label = _RATIONALE_LABEL.search(text)
    if label:
        text = text[label.end() :]
    text = re.sub(r"[*_`#]+", "", text)
    text = re.sub(r"^[ \t>|\-+]+", "", text, flags=re.M)
    text = re.sub(r"\|", " ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)  # what is left of "(Rating: 4/5)"
    text = re.sub(r"\s+", " ", text).strip(" \t\n:-–—.,;")
    return text[:MAX_RATIONALE_CHARS] if re.search(r"\w", text) else ""


def _found_in(number: int, text: str) -> list[_Found]:
    statements, rest = read_rating(text)
    rationale = _rationale(rest)
    if not statements:
        return [_Found(number, None, rationale=rationale)] if _is_na(text) else []
    return [_Found(number, v, scale, rationale) for v, scale in statements]


def _is_na(text: str) -> bool:
    return bool(re.search(rf"(?:^|[\s:*(\[]){_NA}", text.strip()[:40], re.I))


# -- readers, one per shape ------------------------------------------------------


def _from_sections(text: str) -> list[_Found]:
    """Headings or lines that open with ``Response N``; each runs to the next one."""
    markers = list(_MARKER.finditer(text))
    if not markers:
        return []
    ends = [m.start() for m in markers[1:]] + [len(text)]
    found: list[_Found] = []
    for m, end in zip(markers, ends, strict=True):
        body = m.group("rest") + "\n" + text[m.end() : end]
        # A plain heading ("## Summary") ends the section: what follows is not about it.
        for h in _HEADING.finditer(body):
            if not re.search(r"rating|rationale|score|reason", h.group("title"), re.I):
                body = body[: h.start()]
                break
        body = re.sub(r"^[ \t*_]*(?:[:)\].\-–]|</?\w*>)", "", body)
        found += _found_in(int(m.group("n")), body)
    return found


def _from_inline(text: str) -> list[_Found]:
    """``Response 1: 4, Response 2: 3`` anywhere in the text."""
    found = []
    for m in _INLINE.finditer(text):
        value, scale = _match_value(m)
        found.append(_Found(int(m.group("n")), value, scale))
    return found


def _from_single(text: str) -> list[_Found]:
    """One response: the whole text is its section."""
    return _found_in(1, text)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _from_tables(text: str, count: int | None = None) -> list[_Found]:
    """Markdown tables with a response column and a rating column."""
    found: list[_Found] = []
    rows = text.splitlines()
    i = 0
    while i < len(rows):
        if not rows[i].lstrip().startswith("|"):
            i += 1
            continue
        block = []
        while i < len(rows) and rows[i].lstrip().startswith("|"):
            block.append(_cells(rows[i]))
            i += 1
        found += _table_entries(block, count)
    return found


def _column(header: list[str], pattern: str) -> int | None:
    for index, name in enumerate(header):
        if re.search(pattern, re.sub(r"[*_`]", "", name), re.I):
            return index
    return None


def _table_entries(block: list[list[str]], count: int | None) -> list[_Found]:
    if len(block) < 2:
        return []
    header = block[0]
    body = [r for r in block[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    rating_col = _column(header, r"rating|score|grade")
    if rating_col is None:
        return []
    # The response column is the one naming responses whose cells hold numbers
    # ("| - | Response 2 | 3/5 |": not the '#' column of dashes).
    number_col = None
    for pattern in (_LABEL, r"#|\b(?:id|no|n)\b"):
        col = _column(header, pattern)
        if (
            col is not None
            and col != rating_col
            and any(col < len(r) and re.search(r"\d", r[col]) for r in body)
        ):
            number_col = col
            break
    rationale_col = _column(header, "|".join(_RATIONALE_KEYS))
    if number_col is None and count is not None and len(body) != count:
        return []  # rows without response numbers are responses only if one per response
    found = []
    for position, row in enumerate(body, start=1):
        if rating_col >= len(row):
            continue
        number = position
        if number_col is not None and number_col < len(row):
            digits = re.search(r"\d+", row[number_col])
            if digits is None:
                continue
            number = int(digits.group())
        rationale = ""
        if rationale_col is not None and rationale_col < len(row):
            rationale = _rationale(row[rationale_col])
        cell = re.sub(r"[*_`]", "", row[rating_col]).strip()
        statements, _ = read_rating(cell)
        if statements:
            found += [_Found(number, v, s, rationale) for v, s in statements]
        elif _is_na(cell):
            found.append(_Found(number, None, rationale=rationale))
    return found


def _json_values(text: str) -> Iterator[tuple[Any, int, int]]:
    """Every top-level JSON object or array embedded in the text (fenced or not), with
    where it starts and ends."""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            yield value, i, end
            i = end
        else:
            i += 1


def _from_json(text: str) -> list[_Found]:
    for value, start, end in _json_values(text):
        if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
            # A bare list such as [4, 2] is a judgment only when it is the whole
            # answer; inside prose it is more likely quoted code ("nums = [3, 1]").
            outside = re.sub(r"```\w*", "", text[:start] + text[end:])
            if outside.strip():
                continue
        found = _json_entries(value)
        if found:
            return found
    return []


def _key(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _json_rating(value: Any) -> list[tuple[float | None, int]] | None:
    if isinstance(value, bool) or value is None:
        return [(None, MAX_RATING)] if value is None else None
    if isinstance(value, int | float):
        return [(float(value), MAX_RATING)]
    if isinstance(value, str):
        statements, _ = read_rating(value)
        if statements:
            return statements
        return [(None, MAX_RATING)] if _is_na(value) else None
    return None


def _json_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = re.search(r"\d+", value)
        return int(digits.group()) if digits else None
    return None


def _json_item(number: int, item: Any) -> list[_Found]:
    if isinstance(item, dict):
        rating = _json_rating(_key(item, _RATING_KEYS))
        reason = _key(item, _RATIONALE_KEYS)
        rationale = _rationale(str(reason)) if reason is not None else ""
    else:
        rating, rationale = _json_rating(item), ""
    if rating is None:
        return []
    return [_Found(number, v, s, rationale) for v, s in rating]


def _json_entries(value: Any) -> list[_Found]:
    if isinstance(value, dict):
        inner = _key(value, _LIST_KEYS)
        if isinstance(inner, list | dict):
            found = _json_entries(inner)
            if found:
                return found
        found = []
        for key, item in value.items():
            key_text = str(key)
            if re.fullmatch(rf"\s*(?:{_LABEL})?[\s_#-]*\d+\s*", key_text, re.I):
                number = _json_number(key_text)
                if number is not None:
                    found += _json_item(number, item)
        if found:
            return found
        # A single object with a rating: the one response of a one-response call.
        given = _json_number(_key(value, _NUMBER_KEYS))
        return _json_item(1 if given is None else given, value)
    if isinstance(value, list):
        found = []
        for position, item in enumerate(value, start=1):
            number = position
            if isinstance(item, dict):
                given = _json_number(_key(item, _NUMBER_KEYS))
                number = given if given is not None else position
            found += _json_item(number, item)
        return found
    return []
