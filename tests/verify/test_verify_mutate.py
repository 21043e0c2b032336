"""Mutants: small edits, seeded, distinct, described."""

from __future__ import annotations

import ast

from selfalign.verify.mutate import OPERATORS, all_mutants, count_sites, select_mutants

CODE = '''
def clamp_sum(items, lo, hi):
    """Sum items, clipped to [lo, hi]."""
    total = 0
    for i in range(len(items)):
        total += items[i]
    if total < lo and lo is not None:
        return lo
    elif total > hi:
        return hi
    return total


def first_words(text, n=2):
    words = text.strip().split()
    return " ".join(sorted(words[:n]))


def drain(stack):
    out = []
    while stack:
        out.append(stack.pop())
        if len(out) > 100:
            break
    return max(out) if out else -1
'''


def test_mutants_parse_differ_and_are_described() -> None:
    mutants = all_mutants(CODE)
    assert len(mutants) > 30
    codes = {m.code for m in mutants}
    assert len(codes) == len(mutants) and CODE not in codes
    ops = {m.operator for m in mutants}
    assert {"constant", "comparison", "boolean", "arithmetic", "return_none", "range", "slice",
            "negate", "remove_branch", "remove_statement", "swap_call", "skip_call",
            "loop_control"} <= ops <= set(OPERATORS)
    for m in mutants:
        ast.parse(m.code)
        assert m.description.startswith(f"line {m.line}:")
        # One place changed: every other line is as written.
        original, mutated = CODE.splitlines(), m.code.splitlines()
        assert original[: m.line - 1] == mutated[: m.line - 1]
    assert count_sites(CODE) >= len(mutants)


def test_docstrings_annotations_and_dead_code_are_not_mutated() -> None:
    code = (
        'def f(x: int = 1) -> int:\n    """Doc 1."""\n    return x\n    x = 2\n\n\n'
        'print("message", 3)\n'
    )
    mutants = all_mutants(code)
    assert [m.operator for m in mutants] == ["constant"]  # only the default value 1
    assert "Doc 1." in mutants[0].code and "int = (0)" in mutants[0].code


def test_selection_is_seeded_and_puts_risky_mutants_last() -> None:
    a = select_mutants(CODE, 8, seed=3)
    b = select_mutants(CODE, 8, seed=3)
    c = select_mutants(CODE, 8, seed=4)
    assert [m.code for m in a] == [m.code for m in b]
    assert [m.code for m in a] != [m.code for m in c]
    assert len(a) == 8 and len({m.operator for m in a}) >= 5  # operators take turns
    risky = [m.risky for m in a]
    assert risky == sorted(risky)  # False first
    assert select_mutants(CODE, 0) == [] and select_mutants("def broken(:", 5) == []
    assert all(m.risky for m in all_mutants(CODE) if m.line in (20, 21))  # inside `while`


def test_to_dict_leaves_the_code_out() -> None:
    m = select_mutants(CODE, 1)[0]
    assert set(m.to_dict()) == {"operator", "line", "description", "risky"}
