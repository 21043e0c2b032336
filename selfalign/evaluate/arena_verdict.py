"""Read a pairwise verdict out of a judge's free text.

The judge is asked to end with one of five labels in double brackets (`VERDICTS`).
Real judges drift: single brackets, markdown bold, ``A<B`` instead of ``B>A``, a
"My final verdict is: Assistant A is slightly better" sentence with no label, or
the whole list of labels echoed back from the prompt. `parse_verdict` accepts the
shapes that name one verdict unambiguously and returns ``None`` for everything
else; the caller then asks the judge to conclude. A verdict is never guessed.
"""

from __future__ import annotations

import re

VERDICTS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
"""The five labels, from "A much better" to "B much better"."""

A_POINTS = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
"""Points for the answer in position A (the answer in position B gets the opposite)."""

# One comparison between the letters A and B, in any of the spellings judges use:
# ``A>>B``, ``A >> B``, ``A≫B``, ``A<B``, ``B<<A``, ``A==B``, ``A≈B``.
_RELATION = r"(>>|<<|≫|≪|>=|<=|>|<|==|=|≈)"
_PAIR = re.compile(rf"\b([AB])\s*{_RELATION}\s*([AB])\b")
# ``[[A>B]]`` and the looser ``[A>B]``, ``[[ A > B ]]``, ``[[A]]`` (MT-Bench's shape).
_BRACKETED = re.compile(r"(\[\[?)\s*([^\[\]\n]{1,12}?)\s*\]\]?")
# What joins the items of a list of labels, and a list that goes on after a label.
_LIST_SEPARATOR = re.compile(r"\s*(?:,|;|/|\||or|and)?\s*", re.IGNORECASE)
_LIST_CONTINUES = re.compile(r"\s*[,;]\s*\[")
_VERDICT_WORD = re.compile(r"verdict|conclusion|overall|final answer", re.IGNORECASE)
_SENTENCE = re.compile(
    r"(?:(?:assistant|answer|response)\s*)?\b([AB])(?:'s answer|'s response)?\s+is\s+"
    r"(significantly|much|clearly|far|slightly|somewhat|a bit|a little|marginally)?\s*"
    r"(better|superior|stronger|worse|inferior|weaker)",
    re.IGNORECASE,
)
_TIE = re.compile(
    r"\btie\b|relatively the same|about the same|equally (?:good|bad|helpful)|"
    r"(?:both|the two) (?:answers |responses )?are (?:equally|about as|of similar)",
    re.IGNORECASE,
)
_STRONG_WORDS = ("significantly", "much", "clearly", "far")


def canonical(label: str) -> str | None:
    """One of `VERDICTS` for a label in any accepted spelling, else ``None``.

    >>> canonical("A<<B"), canonical(" b > a "), canonical("[[A]]")
    ('B>>A', 'B>A', 'A>B')
    """
    text = label.strip().strip("[]*`'\" ").upper()
    if text in ("A", "B"):
        return "A>B" if text == "A" else "B>A"
    if text in ("C", "TIE"):
        return "A=B"
    match = _PAIR.fullmatch(text)
    if match is None:
        return None
    left, relation, right = match.groups()
    if left == right:
        return None
    if relation in ("=", "==", "≈"):
        return "A=B"
    strong = relation in (">>", "<<", "≫", "≪")
    # Which letter the relation says is better.
    better = left if relation in (">>", ">", "≫", ">=") else right
    if better == "A":
        return "A>>B" if strong else "A>B"
    return "B>>A" if strong else "B>A"


def _bracketed(text: str) -> list[tuple[int, str]]:
    """The bracketed labels of ``text`` that stand alone, with their positions.

    Labels in a list (``[[A>>B]], [[A>B]], ...``, or one followed by ``, [`` where a
    reply was cut off mid-list) are the judge reciting the choices, not choosing:
    the whole list is dropped unless every label in it is the same.
    """
    labels: list[tuple[int, int, str]] = []
    for match in _BRACKETED.finditer(text):
        opening, label = match.groups()
        # A lone letter counts only in double brackets: ``arr[A]`` is code, ``[[A]]`` a verdict.
        if len(label.strip()) == 1 and opening != "[[":
            continue
        verdict = canonical(label)
        if verdict is not None:
            labels.append((match.start(), match.end(), verdict))
    groups: list[list[tuple[int, int, str]]] = []
    for item in labels:
        if groups and _LIST_SEPARATOR.fullmatch(text[groups[-1][-1][1] : item[0]]):
            groups[-1].append(item)
        else:
            groups.append([item])
    found = []
    for group in groups:
        continued = _LIST_CONTINUES.match(text, group[-1][1]) is not None
        if len({v for _, _, v in group}) == 1 and not continued:
            found.append((group[0][0], group[0][2]))
    return found


def _sentence_verdict(text: str) -> str | None:
    """A verdict stated in words ("Assistant B is slightly better", "a tie")."""
    distinct = {_sentence_label(m) for m in _SENTENCE.finditer(text)}
    if _TIE.search(text):
        distinct.add("A=B")
    return distinct.pop() if len(distinct) == 1 else None


def _sentence_label(match: re.Match[str]) -> str:
    letter, degree, direction = match.groups()
    letter = letter.upper()
    worse = direction.lower() in ("worse", "inferior", "weaker")
    better = letter if not worse else ("B" if letter == "A" else "A")
    strong = (degree or "").lower() in _STRONG_WORDS
    if better == "A":
        return "A>>B" if strong else "A>B"
    return "B>>A" if strong else "B>A"


def _bare_last_line(text: str) -> str | None:
    """A last line that is nothing but a label, e.g. ``**A>B**`` or ``Verdict: B>>A``."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = re.sub(r"^[#>*\s-]*(?:final\s+)?(?:verdict|answer)?\s*[:\-]?\s*", "", lines[-1],
                  flags=re.IGNORECASE)
    return canonical(last.rstrip(".!"))


def parse_verdict(text: str) -> str | None:
    """The one verdict ``text`` states, or ``None`` when it states none or several.

    In order:

    1. Bracketed labels (``[[A>B]]``). One distinct label: that one. Several
       (the judge echoed the list of choices, or changed its mind): the labels
       after the last mention of a verdict, when those agree.
    2. Unbracketed, after the last mention of a verdict: a label (``A>B``, bold or
       in backticks), else a sentence ("Assistant A is significantly better",
       "it is a tie").
    3. A last line that is only a label.
    """
    if not text or not text.strip():
        return None
    bracketed = _bracketed(text)
    distinct = {v for _, v in bracketed}
    if len(distinct) == 1:
        return distinct.pop()
    mentions = [m.end() for m in _VERDICT_WORD.finditer(text)]
    if len(distinct) > 1:
        if not mentions:
            return None
        after = {v for pos, v in bracketed if pos >= mentions[-1]}
        return after.pop() if len(after) == 1 else None
    if mentions:
        tail = text[mentions[-1] : mentions[-1] + 300]
        # Stop at a blank line: the verdict sentence, not the next paragraph.
        tail = tail.split("\n\n")[0]
        labels = {v for m in _PAIR.finditer(tail) if (v := canonical(m.group(0))) is not None}
        if len(labels) == 1:
            return labels.pop()
        if not labels:
            worded = _sentence_verdict(tail)
            if worded is not None:
                return worded
    return _bare_last_line(text)
