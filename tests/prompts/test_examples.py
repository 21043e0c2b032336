"""Every few-shot example in ``prompts/examples`` is well formed and actually correct.

For each ``NN-slug.toml`` file the tests check the schema, then run the response's code
followed by the example's tests in a fresh interpreter (they must pass), and finally run a
stub of the same code, in which every function and method returns ``None``, followed by the
same tests (they must fail). The second run proves that the tests exercise the solution
rather than passing vacuously.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "prompts" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.toml"))

REQUIRED_KEYS = {
    "category",
    "language",
    "difficulty",
    "concepts",
    "seed",
    "instruction",
    "response",
    "tests",
}
CATEGORIES = {"function", "class", "program"}
DIFFICULTIES = {"easy", "medium", "hard"}
MIN_EXAMPLES = 20
FILE_NAME = re.compile(r"^(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*\.toml$")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)\n```", re.DOTALL)
# Modules a few-shot solution must not touch: no network, processes, files or clocks
# that would make the sandboxed run non-deterministic or unsafe.
FORBIDDEN_MODULES = {
    "asyncio",
    "ftplib",
    "http",
    "multiprocessing",
    "os",
    "pathlib",
    "random",
    "requests",
    "shutil",
    "socket",
    "subprocess",
    "tempfile",
    "threading",
    "urllib",
}
FORBIDDEN_CALLS = {"input", "open", "eval", "exec", "breakpoint", "__import__"}
RUN_TIMEOUT_S = 10


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _solution(example: dict[str, Any]) -> str:
    blocks = PYTHON_BLOCK.findall(example["response"])
    assert len(blocks) == 1, f"expected exactly one ```python block, found {len(blocks)}"
    return blocks[0]


def _run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _stub_body(*, is_init: bool) -> list[ast.stmt]:
    return [ast.Pass()] if is_init else [ast.Return(value=ast.Constant(value=None))]


def make_stub(code: str) -> str:
    """Return ``code`` with every top-level function and every method emptied.

    Functions and methods return ``None``; ``__init__`` does nothing. Imports, constants,
    class attributes (dataclass fields, enum members) and the ``__main__`` block stay, so
    the stub defines the same top-level names as the real solution.
    """
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.body = _stub_body(is_init=False)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    item.body = _stub_body(is_init=item.name == "__init__")
    return ast.unparse(ast.fix_missing_locations(tree))


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _failure(kind: str, proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{kind} (exit {proc.returncode})\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""]


ids = [path.name for path in EXAMPLE_FILES]
examples = pytest.mark.parametrize("path", EXAMPLE_FILES, ids=ids)


def test_collection_size_and_mix() -> None:
    assert len(EXAMPLE_FILES) >= MIN_EXAMPLES, f"only {len(EXAMPLE_FILES)} examples"
    loaded = [_load(path) for path in EXAMPLE_FILES]
    categories = Counter(example.get("category") for example in loaded)
    difficulties = Counter(example.get("difficulty") for example in loaded)
    assert set(categories) == CATEGORIES, categories
    assert set(difficulties) == DIFFICULTIES, difficulties
    # No difficulty may dominate the pool, and every category needs a few examples.
    assert max(difficulties.values()) <= len(loaded) // 2, difficulties
    assert categories["class"] >= 3 and categories["program"] >= 3, categories


def test_file_names_are_numbered_without_gaps() -> None:
    numbers = []
    for path in EXAMPLE_FILES:
        match = FILE_NAME.match(path.name)
        assert match, f"{path.name} does not match NN-slug.toml"
        numbers.append(int(match.group(1)))
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def test_seeds_instructions_and_responses_are_distinct() -> None:
    loaded = [_load(path) for path in EXAMPLE_FILES]
    for key in ("seed", "instruction", "response", "tests"):
        values = [example[key].strip() for example in loaded]
        assert len(set(values)) == len(values), f"duplicate {key} across examples"


@examples
def test_schema(path: Path) -> None:
    example = _load(path)
    assert set(example) == REQUIRED_KEYS, f"keys differ: {set(example) ^ REQUIRED_KEYS}"
    for key in REQUIRED_KEYS - {"concepts"}:
        assert isinstance(example[key], str) and example[key].strip(), f"{key} must be text"
    assert example["category"] in CATEGORIES
    assert example["difficulty"] in DIFFICULTIES
    assert example["language"] == "python"

    concepts = example["concepts"]
    assert isinstance(concepts, list) and 3 <= len(concepts) <= 6, concepts
    assert all(isinstance(c, str) and c.strip() for c in concepts), concepts
    assert len(set(concepts)) == len(concepts), "duplicate concepts"
    # The S→C answer is the concepts joined by ", ", so a phrase must not contain a
    # separator itself.
    assert not [c for c in concepts if re.search(r"[,;\n]", c)], "concepts contain separators"

    # Completion-mode prompts use "### Snippet", "### Task", ... as section markers and
    # stop sequences; an example containing such a line would cut its own prompt short.
    for key in ("seed", "instruction", "response", "tests"):
        assert not re.search(r"^#{1,6} ", example[key], re.MULTILINE), f"{key} has a heading"


@examples
def test_seed_is_a_documented_function(path: Path) -> None:
    seed = _load(path)["seed"]
    lines = seed.strip().splitlines()
    assert 5 <= len(lines) <= 25, f"seed has {len(lines)} lines"
    tree = ast.parse(seed)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions, "seed must define a top-level function"
    assert all(ast.get_docstring(fn) for fn in functions), "every seed function needs a docstring"


@examples
def test_response_shape(path: Path) -> None:
    example = _load(path)
    response = example["response"]
    assert response.count("```") == 2, "response must contain exactly one fenced block"
    code = _solution(example)
    before, _, after = response.partition("```python")
    after = after.split("```", 1)[1]
    assert before.strip(), "response needs a reasoning paragraph before the code"
    assert after.strip(), "response needs an explanation paragraph after the code"
    assert example["instruction"] not in response, "response must not echo the instruction"

    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module in _imported_modules(node):
                root = module.split(".")[0]
                assert root in sys.stdlib_module_names, f"non-stdlib import {module}"
                assert root not in FORBIDDEN_MODULES, f"forbidden import {module}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"forbidden call {node.func.id}()"
        if isinstance(node, ast.Attribute) and node.attr in {"stdin", "exit"}:
            pytest.fail(f"solution must not use .{node.attr}")

    if example["category"] == "program":
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert len(functions) >= 2, "a program keeps its logic in functions"
        assert any(fn.name == "main" for fn in functions), "a program needs main()"
        stray = [
            n
            for n in tree.body
            if isinstance(n, ast.Expr) and not isinstance(n.value, ast.Constant)
        ]
        assert not stray, "a program must not run code at import time outside __main__"
    else:
        assert not any(_is_main_guard(n) for n in tree.body), "only programs have __main__"


@examples
def test_tests_are_plain_asserts_on_the_specified_api(path: Path) -> None:
    example = _load(path)
    tests_tree = ast.parse(example["tests"])
    asserts = [n for n in ast.walk(tests_tree) if isinstance(n, ast.Assert)]
    assert 3 <= len(asserts) <= 8, f"{len(asserts)} assert statements"
    for node in ast.walk(tests_tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            banned = {"unittest", "pytest"} & set(_imported_modules(node))
            assert not banned, f"tests must use plain asserts, not {banned}"

    # Tests may only rely on names the instruction promises, not on helpers or sample
    # data that happen to exist in this particular response.
    defined = _top_level_names(ast.parse(_solution(example)))
    used = {n.id for n in ast.walk(tests_tree) if isinstance(n, ast.Name)}
    for name in sorted(defined & used):
        assert re.search(rf"\b{re.escape(name)}\b", example["instruction"]), (
            f"tests use {name!r}, which the instruction never mentions"
        )


@examples
def test_solution_passes_its_tests(path: Path) -> None:
    example = _load(path)
    program = _solution(example) + "\n\n" + example["tests"]
    proc = _run(program)
    assert proc.returncode == 0, _failure("solution + tests failed", proc)
    if example["category"] == "program":
        again = _run(program)
        assert again.stdout == proc.stdout, "program output is not deterministic"


@examples
def test_stub_fails_the_tests(path: Path) -> None:
    example = _load(path)
    stub = make_stub(_solution(example))
    alone = _run(stub)
    assert alone.returncode == 0, _failure("the stub itself must run cleanly", alone)
    proc = _run(stub + "\n\n" + example["tests"])
    assert proc.returncode != 0, "tests pass against a do-nothing stub: they are vacuous"
    assert "Traceback" in proc.stderr, _failure("stub run failed without a traceback", proc)


def test_make_stub_empties_functions_and_methods() -> None:
    code = (
        "import math\n"
        "LIMIT = 3\n"
        "def area(r):\n    return math.pi * r * r\n"
        "class Box:\n"
        "    size: int = 1\n"
        "    def __init__(self, n):\n        self.n = n\n"
        "    def grow(self):\n        return self.n + 1\n"
    )
    stub = make_stub(code)
    namespace: dict[str, Any] = {}
    exec(compile(stub, "<stub>", "exec"), namespace)
    assert namespace["LIMIT"] == 3 and namespace["area"](2) is None
    box = namespace["Box"](5)
    assert not hasattr(box, "n") and box.grow() is None and box.size == 1


@examples
def test_pipeline_parsers_read_the_example_back(path: Path) -> None:
    """What the few-shot teaches must be exactly what the stages' parsers extract."""
    parse = pytest.importorskip("selfalign.generation.parse")
    prompts = pytest.importorskip("selfalign.generation.prompts")
    example = prompts.load_example(path)

    concepts = parse.parse_concepts(prompts.concepts_answer(example.concepts))
    assert concepts == list(example.concepts)
    assert parse.parse_instruction(example.instruction) == example.instruction.strip()

    answer = parse.parse_answer(example.answer)
    assert answer.parse_error is None
    assert answer.solution.strip() == _solution(_load(path)).strip()
    assert answer.tests.strip() == example.tests.strip()
