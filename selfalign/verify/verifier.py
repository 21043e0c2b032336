"""The verifier: program in, verdict with pass/fail, test strength and reasons out.

One library entry point serves the ``execute`` stage, ``selfalign sandbox run
--check-tests`` and the RL reward::

    from selfalign.sandbox import SandboxConfig, open_pool
    from selfalign.verify import Candidate, StrengthConfig, Verifier, pool_runner

    with open_pool(SandboxConfig(workers=4)) as pool:
        verifier = Verifier(pool_runner(pool), StrengthConfig(), pool.config)
        for v in verifier.verify([Candidate("a1", solution, tests)]):
            print(v.passed, v.strength, [str(r) for r in v.reasons])

How a verdict is reached (docs/verification.md has the rules for users):

1. Every candidate's program (:func:`selfalign.curate.program.assemble`) runs once;
   identical programs run once.
2. For the programs that pass: static analysis of the tests
   (:mod:`.static_tests`) and of the solution (:mod:`.gaming`).
3. Still for those: the strength check. The null implementation, tests with a
   changed expected value and mutants of the solution are packed, several candidates
   per program, into *harness* programs (:mod:`.harness_main`) that run in the same
   pool, all in one stream. The harness stops a candidate as soon as its result is
   decided (the tests passed on the null implementation; every changed expectation
   still passed; enough mutants killed, or too many survived, to meet the threshold).
   Candidates it could not finish within the sandbox's time limit go to a next wave,
   one per program.

``run`` is any ``list[Program] -> {program id: ExecResult}``: :func:`pool_runner`
wraps a pool, and through it :meth:`Verifier.verify` streams: answers join the check as
their programs pass, and full harness programs go into the same stream of pool jobs as
the remaining programs (:func:`check_stream`). Callers with more work of their own in
the stream (the execute stage) use :class:`StrengthCheck` and :func:`check_stream`
directly.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import importlib.util
import json
import logging
import marshal
import math
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from selfalign.curate.program import assemble, program_hash, strip_main_guard
from selfalign.verify import harness_main
from selfalign.verify.config import REASON_CODES, StrengthConfig
from selfalign.verify.gaming import find_gaming
from selfalign.verify.mutate import Mutant, select_mutants
from selfalign.verify.null import null_implementation
from selfalign.verify.parsing import index
from selfalign.verify.perturb import Perturbation, perturb_expectations
from selfalign.verify.static_tests import TestAnalysis, analyse_tests

if TYPE_CHECKING:
    from selfalign.sandbox import ExecResult, ProcessPool, Program, SandboxConfig

log = logging.getLogger(__name__)

RunPrograms = Callable[[list["Program"]], Mapping[str, "ExecResult"]]
"""Runs programs and returns their results by program id (any order, any batching)."""

STRENGTHS = ("strong", "weak")
_HARNESS_SOURCE = Path(harness_main.__file__).read_text(encoding="utf-8")
_HARNESS_FILE = "<selfalign strength harness>"
_RESULT_BYTES_PER_CANDIDATE = 96
SCRATCH_DIRS = ("/tmp", "/dev/shm")
"""Directories shared by the variants inside a sandbox, emptied of what each left there."""


@dataclass(frozen=True)
class Candidate:
    """One answer to verify: its id, solution code and test code."""

    id: str
    solution: str
    tests: str


@dataclass(frozen=True)
class Reason:
    """Why an answer is not strong: ``code`` (gamed_tests, vacuous_tests, weak_tests),
    ``kind`` (e.g. ``null_passes``), a readable ``detail`` and the line, if any."""

    code: str
    kind: str
    detail: str = ""
    line: int = 0

    def __str__(self) -> str:
        text = f"{self.code}: {self.kind}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verification:
    """The verdict on one answer: did it pass, and could its tests have failed?

    ``strength`` is ``"strong"`` (every check below held), ``"weak"`` (``reasons`` say
    why), or None when the program did not pass (strength is only asked of passes).
    ``strong`` needs: the program passed; no vacuous tests and no gaming found by the
    static checks; the tests fail on the null implementation (or the solution defines
    no function); not every changed expectation still passed; at least
    ``min_mutation_score`` of the mutants killed (a solution with no mutant is weak:
    ``no_mutants``); and the original program passed again at the end of the check
    (``control``).
    """

    id: str
    program_hash: str
    status: str
    passed: bool
    strength: str | None = None
    reasons: list[Reason] = field(default_factory=list)
    null_status: str | None = None
    """``fails`` (good), ``passes``, ``not_applicable`` (no function to null), ``not_run``."""
    null_exception: str | None = None
    mutation_score: float | None = None
    """Killed / run, over the mutants run (early stop: the decision is exact, the score
    counts what ran)."""
    mutants_total: int = 0
    mutants_killed: list[dict[str, Any]] = field(default_factory=list)
    mutants_survived: list[dict[str, Any]] = field(default_factory=list)
    expectations_run: int = 0
    expectations_ignored: list[dict[str, Any]] = field(default_factory=list)
    """Changed expectations that still passed (line, description)."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """Static findings: ``{"source": "tests"|"solution", "family", "line", "detail"}``."""
    checks: int = 0
    """Checks in the tests that run and could fail (static; the 'most_asserts' count)."""
    control: str | None = None
    """Outcome of the original program re-run at the end of the strength check."""
    result: dict[str, Any] = field(default_factory=dict)
    """The sandbox result of the original program (:class:`ExecResult` fields)."""

    @property
    def strong(self) -> bool:
        return self.strength == "strong"

    @property
    def reason(self) -> str | None:
        """The main reason code (``gamed_tests`` > ``vacuous_tests`` > ``weak_tests``)."""
        codes = {r.code for r in self.reasons}
        return next((c for c in REASON_CODES if c in codes), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = [str(r) for r in self.reasons]
        data["reason"] = self.reason
        return data


class StrengthCheck:
    """The strength check as a step-by-step object (see :meth:`Verifier.start`).

    Answers can be added while earlier ones run: :meth:`add` prepares an answer whose
    program passed, :meth:`programs` packs the prepared answers into harness programs
    (with ``flush=False`` only the full ones, so that a caller streaming results in
    gets well-filled programs), :meth:`receive` takes one harness program's result.
    An answer left unfinished by its harness program is sent again, alone, up to
    ``max_waves`` times in all.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.verdicts_: list[Verification] = []
        self.owners: list[str | None] = []
        self.candidates: dict[str, Candidate] = {}
        self.static: dict[str, tuple[TestAnalysis | None, list[dict[str, Any]]]] = {}
        self.plans: dict[str, _Plan] = {}
        self.queued: list[_Plan] = []
        """Answers waiting for a harness program."""
        self.sent: dict[str, list[_Plan]] = {}
        """Harness programs out (by program id) and the answers in each."""
        self.waves: dict[str, int] = {}
        self._decided = False

    @property
    def done(self) -> bool:
        """True once nothing is queued or out (every answer decided, or out of waves)."""
        return not self.queued and not self.sent

    def add(
        self,
        cand: Candidate,
        result: ExecResult,
        parts: tuple[str, str] | None = None,
        prepared: _Prepared | None = None,
    ) -> None:
        """Add an answer and the result of its original program (only passes are checked)."""
        v = self.verifier
        prefix, rest = parts or program_parts(cand.solution, cand.tests)
        verification = Verification(
            id=cand.id,
            program_hash=program_hash(prefix + rest),
            status=result.status,
            passed=result.passed,
            result=result.to_dict(),
        )
        self.verdicts_.append(verification)
        if not result.passed:
            self.owners.append(None)
            return
        key = _key(cand)
        self.owners.append(key)
        self.candidates[key] = cand
        if key in self.static:
            return
        prep = prepared or v._prepare(cand, prefix, rest)
        self.static[key] = prep.static
        if v.config.dynamic:
            plan = v._plan(key, prep, result, prefix, rest)
            self.plans[key] = plan
            if not plan.done():
                self.queued.append(plan)

    def programs(self, flush: bool = True) -> list[Program]:
        """Harness programs for the queued answers. ``flush=False`` keeps back the last,
        not yet full one (more answers may join it)."""
        v = self.verifier
        fresh = [p for p in self.queued if not self.waves.get(p.key)]
        groups = [[p] for p in self.queued if self.waves.get(p.key)]  # retries run alone
        packed = v._groups(fresh)
        held = packed.pop() if packed and not flush and not v._full(packed[-1]) else []
        groups += packed
        # The most expensive first: the pool starts the long programs early.
        groups.sort(key=lambda g: -sum(p.expected_cost() for p in g))
        self.queued = held
        out: list[Program] = []
        for group in groups:
            prog = v._program(group)
            out.append(prog)
            self.sent[prog.id] = group
            for plan in group:
                self.waves[plan.key] = self.waves.get(plan.key, 0) + 1
        if out:
            v.stats["strength_programs"] += len(out)
            most = max(self.waves[p.key] for g in groups for p in g)
            v.stats["waves"] = max(v.stats["waves"], most)
            log.debug("strength: %d harness programs for %d answers",
                      len(out), sum(len(g) for g in groups))
        return out

    def receive(self, pid: str, result: ExecResult | None) -> bool:
        """The result of harness program ``pid``; False if it is not one of ours."""
        group = self.sent.pop(pid, None)
        if group is None:
            return False
        self.verifier._absorb(result, group)
        limit = self.verifier.config.max_waves
        self.queued += [p for p in group if not p.done() and self.waves[p.key] < limit]
        return True

    def feed(self, results: Mapping[str, ExecResult]) -> None:
        """Results of every program from :meth:`programs` (by id; a missing one counts as
        a sandbox failure of its answers, extra ids are ignored)."""
        for pid in list(self.sent):
            self.receive(pid, results.get(pid))

    def close(self) -> None:
        """Give up on what is still queued or out: those answers are unfinished."""
        for group in self.sent.values():
            self.verifier._absorb(None, group)
        for plan in self.queued:
            plan.failures.append("never sent")
        self.sent, self.queued = {}, []

    def verdicts(self) -> list[Verification]:
        """The verdicts, in the order added (call once :attr:`done` is True)."""
        if not self._decided:
            self._decided = True
            for v, key in zip(self.verdicts_, self.owners, strict=True):
                if key is None:
                    continue
                analysis, findings = self.static[key]
                self.verifier._decide(
                    v, analysis, findings, self.plans.get(key), self.candidates[key]
                )
            self.verifier.stats["checked"] += sum(1 for k in self.owners if k is not None)
        return self.verdicts_


class _Runs(Protocol):
    def run(self, programs: Iterable[Program | None]) -> Iterable[ExecResult]: ...


class PoolRunner:
    """``run`` for a pool (or anything with its ``run``, such as a stage's lazily
    started one): every program in one ``pool.run`` stream, results by id. A
    :class:`Verifier` given one streams its check through ``pool`` (see
    :meth:`Verifier.verify`)."""

    def __init__(self, pool: ProcessPool | _Runs) -> None:
        self.pool = pool

    def __call__(self, programs: list[Program]) -> dict[str, ExecResult]:
        return {r.id: r for r in self.pool.run(programs)}


def pool_runner(pool: ProcessPool | _Runs) -> PoolRunner:
    """The :class:`PoolRunner` of ``pool``."""
    return PoolRunner(pool)


def check_stream(
    plain: Iterable[Program], waiting: set[str], check: StrengthCheck | None
) -> Iterator[Program | None]:
    """Programs for ``pool.run``: the ``plain`` programs, with the check's harness
    programs put first as soon as one is full; ``None`` (nothing yet) while harness
    programs wait on results still to come. ``waiting`` holds the plain programs
    without a result yet: the caller removes each as its result arrives and adds the
    answers that passed to ``check`` (its last, partly filled harness program goes out
    once no answer can join it)."""
    queue = deque(plain)
    while True:
        if check is not None:
            yield from check.programs(flush=not queue and not waiting)
        if queue:
            yield queue.popleft()
            continue
        if check is None or (check.done and not waiting):
            return  # (results still to come may add answers to the check)
        yield None


# ---------------------------------------------------------------------------------------
# planning


@dataclass
class _Plan:
    key: str
    body: str
    rest: str
    runs: list[dict[str, str]]
    null: int | None
    perts: list[int]
    muts: list[int]
    need: int
    cpu_s: float
    wall_s: float
    duration_s: float
    mutants: list[Mutant]
    perturbations: list[Perturbation]
    early_stop: bool
    modules: list[str] = field(default_factory=list)
    isolate: bool = False
    out: list[str] = field(default_factory=list)
    control: str = "-"
    control_exc: str = ""
    weak_without_mutants: bool = True
    calibrate: bool = False
    cpu_factor: float = 3.0
    min_cpu_s: float = 0.02
    variant_cpu_s: float | None = None
    null_exc: str = ""
    failures: list[str] = field(default_factory=list)
    sure: list[int] = field(default_factory=list)
    """Runs of ``perts`` whose changed check is a module-level assert (see
    :attr:`Perturbation.sure`): each must fail."""

    def rule(self) -> dict[str, Any]:
        rule = {
            "null": self.null,
            "perts": self.perts,
            "muts": self.muts,
            "need": self.need,
            "early_stop": self.early_stop,
            "weak_without_mutants": self.weak_without_mutants,
            "calibrate": self.calibrate,
        }
        if self.sure:
            rule["sure"] = self.sure
        return rule

    def done(self) -> bool:
        return harness_main._step({"plan": self.rule()}, self.out, self.control) is None

    def expected_cost(self) -> float:
        """Seconds the harness is expected to spend: variants run warm, without the
        sandbox's per-program start, so a fraction of the program's own time each."""
        runs = 1 + (self.null is not None) + bool(self.perts) + self.need
        return runs * (0.0005 + self.duration_s / 4)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key,
            "body": self.body,
            "rest": self.rest,
            "runs": self.runs,
            "plan": self.rule(),
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "out": "".join(self.out),
            "modules": self.modules,
            "control": self.control,
            "cpu_factor": self.cpu_factor,
            "min_cpu_s": self.min_cpu_s,
            "variant_cpu_s": self.variant_cpu_s,
        }
        if self.isolate:
            data["isolate"] = True
        return data


@dataclass
class _Prepared:
    """The part of a check that does not depend on the program's result."""

    static: tuple[TestAnalysis | None, list[dict[str, Any]]]
    null: str | None
    perturbations: list[Perturbation]
    rests: list[str]
    mutants: list[Mutant]
    modules: list[str]
    isolate: bool


def _key(cand: Candidate) -> str:
    """Identical answers (solution and tests) share one check."""
    return hashlib.sha256(json.dumps([cand.solution, cand.tests]).encode("utf-8")).hexdigest()[:16]


def program_parts(solution: str, tests: str) -> tuple[str, str]:
    """The program of the assembly rule as (solution part, the rest): ``assemble`` equals
    their concatenation, and the rest depends on the tests only, so variants of the
    solution reuse it."""
    body, _ = strip_main_guard(solution)
    prefix = body.rstrip("\n") + "\n" if body.strip() else ""
    return prefix, assemble("", tests).code


@functools.cache
def harness_head() -> str:
    """The start of every harness program: the harness's code, compiled here once.

    Compiling the harness's source takes a sandbox about 8 ms for every harness program.
    It therefore travels as marshalled bytecode, which loads in a fraction of that,
    whenever the sandbox's interpreter has the same bytecode version as ours (its
    ``MAGIC_NUMBER``); any other interpreter compiles the source, which travels too.
    Only built-in modules are imported to unpack either.
    """
    code = compile(_HARNESS_SOURCE, _HARNESS_FILE, "exec", dont_inherit=True)

    def packed(data: bytes) -> str:
        return base64.b64encode(zlib.compress(data, 9)).decode("ascii")

    return (
        "import _frozen_importlib_external as _fie, binascii as _ba, marshal as _ms, zlib as _zl\n"
        f"if _fie.MAGIC_NUMBER == {importlib.util.MAGIC_NUMBER!r}:\n"
        f"    exec(_ms.loads(_zl.decompress(_ba.a2b_base64({packed(marshal.dumps(code))!r}))))\n"
        "else:\n"
        f"    exec(compile(_zl.decompress(_ba.a2b_base64({packed(_HARNESS_SOURCE.encode())!r})),"
        f" {_HARNESS_FILE!r}, 'exec', dont_inherit=True))\n"
        "del _fie, _ba, _ms, _zl\n"
    )


def _perturbed_rest(rest: str, tests: str, changed: str) -> str:
    """The rest of the program for tests with one literal changed."""
    at = rest.find(tests)
    if at >= 0 and rest.find(tests, at + 1) < 0:
        return rest[:at] + changed + rest[at + len(tests) :]
    return assemble("", changed).code  # the assembly rule edited the tests: redo it


def _mutant_prefix(code: str) -> str:
    return code.rstrip("\n") + "\n" if code.strip() else ""


def imported_modules(*sources: str) -> list[str]:
    """Every module (and parent package) the code imports, in first-seen order."""
    found: dict[str, None] = {}
    for source in sources:
        idx = index(source)
        if idx is None:
            continue
        for node in idx.nodes:
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    found.setdefault(".".join(parts[:i]), None)
    return list(found)


# Text that hints at process-wide state changes: such answers get a process of their own
# in the harness, so that they cannot disturb (or be disturbed by) the others.
_ISOLATE_HINTS = (
    "builtins",
    "sys.modules",
    "setattr",
    "globals()",
    "__dict__",
    "gc.",
    "ctypes",
    "signal",
    "threading",
    "multiprocessing",
    "atexit",
    "fork",
    "subprocess",
    "environ",
    "settrace",
    "setprofile",
    "excepthook",
    "_exit",
    "exec",
    "mock",
    "monkeypatch",
)


class Verifier:
    """Verifies answers through ``run`` (see the module docstring); reusable across batches."""

    def __init__(
        self,
        run: RunPrograms,
        config: StrengthConfig | None = None,
        sandbox: SandboxConfig | None = None,
    ) -> None:
        from selfalign.sandbox import SandboxConfig

        self.run = run
        self.config = config or StrengthConfig()
        self.sandbox = sandbox or SandboxConfig()
        if self.sandbox.tail_bytes < 256:
            raise ValueError(
                f"the strength check reads its result from stdout, but tail_bytes="
                f"{self.sandbox.tail_bytes} keeps too little of it: use tail_bytes >= 4096 "
                "(the default)"
            )
        timeout = self.sandbox.timeout_s
        self.budget_s = max(0.3, min(0.6 * timeout, timeout - 3.0))
        self.scratch: tuple[str, ...] = SCRATCH_DIRS
        """Shared directories the harness empties after each variant (the sandbox's own
        /tmp; set to () to run harness programs outside a sandbox, as tests do)."""
        self.stats: dict[str, int] = {
            "programs": 0,
            "strength_programs": 0,
            "variants": 0,
            "waves": 0,
            "checked": 0,
        }

    # -- public ---------------------------------------------------------------------

    def verify(self, candidates: Iterable[Candidate]) -> list[Verification]:
        """Run every candidate's program and check the strength of those that pass; the
        verdicts come in the order of ``candidates``.

        Through a :class:`PoolRunner` it all runs in one stream: an answer joins the
        check as its program passes. Through any other ``run``, the programs run first
        (the answers' static checks, null implementations, mutants and changed
        expectations are made meanwhile), then the check."""
        from selfalign.sandbox import Program

        items = list(candidates)
        codes: dict[str, str] = {}
        parts: list[tuple[str, str]] = []
        hashes: list[str] = []
        for c in items:
            prefix, rest = program_parts(c.solution, c.tests)
            h = program_hash(prefix + rest)
            codes.setdefault(h, prefix + rest)
            parts.append((prefix, rest))
            hashes.append(h)
        if isinstance(self.run, PoolRunner):
            return self._verify_streaming(self.run.pool, items, parts, hashes, codes)
        # The static checks, the null implementation, mutants and changed expectations of
        # every answer are prepared in a thread while the pool runs the programs (the
        # pool's loop mostly waits on its sandboxes); answers that fail waste that work.
        with ThreadPoolExecutor(max_workers=1) as executor:
            future = executor.submit(self._prepare_all, items, parts)
            try:
                results = self.run([Program(h, code) for h, code in codes.items()]) if codes else {}
            except BaseException:
                future.cancel()
                raise
            prepared = future.result()
        self.stats["programs"] += len(codes)
        pairs = [(c, self._result(results, h)) for c, h in zip(items, hashes, strict=True)]
        return self._finish(self._start(pairs, parts, prepared))

    def _verify_streaming(
        self,
        pool: ProcessPool | _Runs,
        items: list[Candidate],
        parts: list[tuple[str, str]],
        hashes: list[str],
        codes: dict[str, str],
    ) -> list[Verification]:
        from selfalign.sandbox import Program

        if not items:
            return []
        by_hash: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            by_hash.setdefault(h, []).append(i)
        check = StrengthCheck(self)
        added: list[int] = []  # the candidate of each verdict, in the order added
        waiting = set(codes)
        plain = [Program(h, code) for h, code in codes.items()]
        for r in pool.run(check_stream(plain, waiting, check)):
            if r.id not in waiting:
                check.receive(r.id, r)
                continue
            waiting.discard(r.id)
            for i in by_hash.pop(r.id):
                check.add(items[i], r, parts[i])
                added.append(i)
        check.close()  # nothing is left unless the pool failed: those are unfinished
        for h, left in by_hash.items():  # the pool returned no result for these
            for i in left:
                check.add(items[i], self._result({}, h), parts[i])
                added.append(i)
        self.stats["programs"] += len(codes)
        # Each candidate was added once: put the verdicts back in the candidates' order.
        pairs = sorted(zip(added, check.verdicts(), strict=True), key=lambda pair: pair[0])
        return [verification for _, verification in pairs]

    def _prepare_all(
        self, items: Sequence[Candidate], parts: Sequence[tuple[str, str]]
    ) -> dict[str, _Prepared]:
        out: dict[str, _Prepared] = {}
        for cand, (prefix, rest) in zip(items, parts, strict=True):
            key = _key(cand)
            if key not in out:
                out[key] = self._prepare(cand, prefix, rest)
        return out

    def check(self, pairs: Sequence[tuple[Candidate, ExecResult]]) -> list[Verification]:
        """Verdicts for candidates whose original program already ran (``result``)."""
        return self._finish(self.start(pairs))

    def start(self, pairs: Sequence[tuple[Candidate, ExecResult]]) -> StrengthCheck:
        """The strength check of ``pairs`` as a step-by-step object, for callers that run
        its programs together with other work (the next batch's programs, say)::

            check = verifier.start(pairs)
            while not check.done:
                check.feed(run(check.programs() + other_programs))
            verdicts = check.verdicts()
        """
        return self._start(pairs, [program_parts(c.solution, c.tests) for c, _ in pairs])

    def _finish(self, check: StrengthCheck) -> list[Verification]:
        while not check.done:
            programs = check.programs()
            check.feed(self.run(programs) if programs else {})
        return check.verdicts()

    def _start(
        self,
        pairs: Sequence[tuple[Candidate, ExecResult]],
        parts: Sequence[tuple[str, str]],
        prepared: Mapping[str, _Prepared] | None = None,
    ) -> StrengthCheck:
        check = StrengthCheck(self)
        prepared = prepared or {}
        for (cand, result), part in zip(pairs, parts, strict=True):
            check.add(cand, result, part, prepared.get(_key(cand)))
        return check

    # -- steps ---------------------------------------------------------------------------

    @staticmethod
    def _result(results: Mapping[str, ExecResult], h: str) -> ExecResult:
        from selfalign.sandbox import ExecResult

        r = results.get(h)
        return r if r is not None else ExecResult.error(h, "the sandbox returned no result")

    def _static(self, cand: Candidate) -> tuple[TestAnalysis | None, list[dict[str, Any]]]:
        if not self.config.static_checks:
            return None, []
        analysis = analyse_tests(cand.tests, cand.solution)
        findings = [{"source": "tests", **f.to_dict()} for f in analysis.findings]
        findings += [{"source": "solution", **f.to_dict()} for f in find_gaming(cand.solution)]
        return analysis, findings

    def _prepare(self, cand: Candidate, prefix: str, rest: str) -> _Prepared:
        """Everything of the check that does not depend on the program's result."""
        cfg = self.config
        static = self._static(cand)
        null = null_implementation(prefix) if cfg.null_check and prefix else None
        perturbations = perturb_expectations(cand.tests, cfg.expectation_checks, cfg.seed)
        mutants = select_mutants(prefix, cfg.mutants, cfg.seed) if prefix else []
        suspicious = any(f["source"] == "solution" for f in static[1])
        return _Prepared(
            static=static,
            null=null.code if null is not None and null.applicable else None,
            perturbations=perturbations,
            rests=[_perturbed_rest(rest, cand.tests, p.tests) for p in perturbations],
            mutants=mutants,
            modules=imported_modules(prefix, cand.tests),
            isolate=suspicious or any(h in prefix or h in cand.tests for h in _ISOLATE_HINTS),
        )

    def _plan(self, key: str, prep: _Prepared, result: ExecResult, prefix: str, rest: str) -> _Plan:
        cfg = self.config
        runs: list[dict[str, str]] = []
        null_index = None
        if prep.null is not None:
            null_index = len(runs)
            runs.append({"body": _mutant_prefix(prep.null)})
        perts = []
        sure = []
        duration = max(0.0, float(result.duration_s))
        for changed, p in zip(prep.rests, prep.perturbations, strict=True):
            if p.sure and duration <= cfg.slow_s:
                sure.append(len(runs))  # a slow program only runs until one fails
            perts.append(len(runs))
            runs.append({"rest": changed})
        mutants = prep.mutants
        if duration > cfg.slow_s and cfg.slow_mutants < len(mutants):
            mutants = select_mutants(prefix, cfg.slow_mutants, cfg.seed)
        muts = []
        for m in mutants:
            muts.append(len(runs))
            runs.append({"body": _mutant_prefix(m.code)})
        need = math.ceil(cfg.min_mutation_score * len(muts) - 1e-9) if muts else 0
        # The pool's duration is wall time, start-up included: an upper bound of the
        # CPU time the program takes when it runs warm inside the harness.
        cpu = min(self.budget_s, max(cfg.min_cpu_s, cfg.cpu_factor * duration))
        wall = min(self.budget_s, max(cfg.min_wall_s, cfg.wall_factor * duration))
        return _Plan(
            key=key,
            body=prefix,
            rest=rest,
            runs=runs,
            null=null_index,
            perts=perts,
            muts=muts,
            need=need,
            cpu_s=cpu,
            wall_s=wall,
            duration_s=duration,
            mutants=mutants,
            weak_without_mutants=cfg.mutants > 0,
            # A slow program runs its control first: the CPU limit of its variants then
            # follows the CPU it really takes, not the pool's wall time.
            calibrate=cfg.cpu_factor * duration > cfg.min_cpu_s,
            cpu_factor=cfg.cpu_factor,
            min_cpu_s=cfg.min_cpu_s,
            perturbations=prep.perturbations,
            early_stop=cfg.early_stop,
            out=["-"] * len(runs),
            modules=prep.modules,
            isolate=prep.isolate,
            sure=sure,
        )

    def _pack_cap(self) -> int:
        tail = (self.sandbox.tail_bytes - 128) // _RESULT_BYTES_PER_CANDIDATE
        return max(1, min(self.config.max_pack, tail))

    def _groups(self, plans: list[_Plan]) -> list[list[_Plan]]:
        """Plans in order, cut into groups of at most ``max_pack`` answers and about
        ``pack_s`` expected seconds: one harness program each (the last may be short)."""
        cap = self._pack_cap()
        groups: list[list[_Plan]] = []
        current: list[_Plan] = []
        cost = 0.0
        for plan in plans:
            c = plan.expected_cost()
            if current and (len(current) >= cap or cost + c > self.config.pack_s):
                groups.append(current)
                current, cost = [], 0.0
            current.append(plan)
            cost += c
        if current:
            groups.append(current)
        return groups

    def _full(self, group: list[_Plan]) -> bool:
        """Whether a group is worth a harness program of its own while more may come."""
        cost = sum(p.expected_cost() for p in group)
        return len(group) >= self._pack_cap() or cost >= self.config.pack_s / 2

    def _program(self, group: list[_Plan]) -> Program:
        from selfalign.sandbox import Program

        data = {
            "budget_s": self.budget_s,
            "candidates": [p.payload() for p in group],
            "scratch": list(self.scratch),
        }
        blob = zlib.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), 6)
        payload = base64.b64encode(blob).decode("ascii")
        code = harness_head() + f"\n_main({payload!r})\n"
        return Program(f"strength-{program_hash(code)[:24]}", code)

    def _absorb(self, result: ExecResult | None, group: list[_Plan]) -> None:
        parsed = _parse_harness(result)
        if isinstance(parsed, str):
            for plan in group:
                plan.failures.append(parsed)
            return
        by_key = {item.get("key"): item for item in parsed}
        for plan in group:
            item = by_key.get(plan.key)
            if item is None or "error" in item:
                plan.failures.append(f"harness error {item.get('error') if item else 'missing'}")
                continue
            out = str(item.get("out", ""))
            if len(out) == len(plan.out):
                before = sum(c != "-" for c in plan.out)
                plan.out = list(out)
                self.stats["variants"] += sum(c != "-" for c in plan.out) - before
            plan.control = str(item.get("control", "-"))[:1] or "-"
            if isinstance(item.get("variant_cpu_s"), int | float):
                plan.variant_cpu_s = float(item["variant_cpu_s"])
            plan.control_exc = str(item.get("control_exc", ""))
            if item.get("null_exc"):
                plan.null_exc = str(item["null_exc"])
            if item.get("stop"):
                plan.failures.append(f"stopped: {item['stop']}")

    # -- the decision ------------------------------------------------------------------

    def _decide(
        self,
        v: Verification,
        analysis: TestAnalysis | None,
        findings: list[dict[str, Any]],
        plan: _Plan | None,
        cand: Candidate,
    ) -> None:
        cfg = self.config
        reasons: list[Reason] = []
        v.findings = findings
        if analysis is not None:
            v.checks = analysis.checks
            if analysis.vacuous_reason:
                family = next((f["family"] for f in findings if f["source"] == "tests"), "no_check")
                reasons.append(Reason("vacuous_tests", family, analysis.vacuous_reason))
            seen: set[str] = set()
            for f in findings:
                if f["source"] == "solution" and f["family"] not in seen:
                    seen.add(f["family"])
                    reasons.append(
                        Reason(
                            "gamed_tests",
                            f["family"],
                            f"{f['detail']} (line {f['line']})",
                            f["line"],
                        )
                    )
        if plan is None:
            if not cfg.dynamic and analysis is None:
                v.strength = "unchecked"
                return
            if cfg.null_check:
                v.null_status = "not_applicable"
        else:
            self._dynamic(v, plan, reasons)
        if cfg.mutants > 0 and (plan is None or not plan.muts):
            reasons.append(
                Reason(
                    "weak_tests",
                    "no_mutants",
                    "the solution has nothing to mutate, so no test can be shown to check it",
                )
            )
        v.reasons = reasons
        v.strength = "weak" if reasons else "strong"

    def _dynamic(self, v: Verification, plan: _Plan, reasons: list[Reason]) -> None:
        cfg = self.config
        out = plan.out
        if plan.null is None:
            v.null_status = "not_applicable" if cfg.null_check else None
        else:
            code = out[plan.null]
            v.null_status = {"P": "passes", "-": "not_run"}.get(code, "fails")
            v.null_exception = plan.null_exc or None
            if code == "P":
                reasons.append(
                    Reason(
                        "weak_tests",
                        "null_passes",
                        "the tests pass when every function returns None",
                    )
                )
        ran = [i for i in plan.perts if out[i] != "-"]
        v.expectations_run = len(ran)
        ignored = [
            {"line": p.line, "description": p.description}
            for i, p in zip(plan.perts, plan.perturbations, strict=True)
            if out[i] == "P"
        ]
        v.expectations_ignored = ignored
        sure = [
            p
            for i, p in zip(plan.perts, plan.perturbations, strict=True)
            if i in plan.sure and out[i] == "P"
        ]
        if sure and not (ran and len(ran) == len(plan.perts) and all(out[i] == "P" for i in ran)):
            reasons.append(
                Reason(
                    "weak_tests",
                    "expected_ignored",
                    f"the module-level check at line {sure[0].line} passes with a changed expected "
                    f"value ({sure[0].description}): the value compared equals two different "
                    "constants, so the solution returns an always-equal object or reads its tests",
                    sure[0].line,
                )
            )
        if ran and len(ran) == len(plan.perts) and all(out[i] == "P" for i in ran):
            reasons.append(
                Reason(
                    "weak_tests",
                    "expected_ignored",
                    "the program still passes with changed expected values ("
                    + "; ".join(d["description"] for d in ignored)
                    + "): the solution reads its tests or returns an always-equal object, "
                    "or the checks' failures are swallowed",
                    ignored[0]["line"],
                )
            )
        v.mutants_total = len(plan.muts)
        killed, survived = [], []
        for i, m in zip(plan.muts, plan.mutants, strict=True):
            code = out[i]
            if code == "-":
                continue
            entry = {**m.to_dict(), "outcome": _OUTCOMES.get(code, code)}
            (survived if code == "P" else killed).append(entry)
        v.mutants_killed, v.mutants_survived = killed, survived
        if killed or survived:
            v.mutation_score = round(len(killed) / (len(killed) + len(survived)), 4)
        if plan.muts and v.null_status != "passes" and not _expectations_decided(plan):
            decided = len(killed) >= plan.need or len(survived) > len(plan.muts) - plan.need
            if decided and len(killed) < plan.need:
                reasons.append(
                    Reason(
                        "weak_tests",
                        "mutants_survive",
                        f"killed {len(killed)} of {len(killed) + len(survived)} mutants run "
                        f"({len(plan.muts)} drawn), below {cfg.min_mutation_score:g}",
                    )
                )
        v.control = _OUTCOMES.get(plan.control, plan.control)
        if plan.control not in "P-":
            reasons.append(
                Reason(
                    "weak_tests",
                    "unreliable",
                    f"the original program did not pass again inside the check ({v.control}"
                    + (f", {plan.control_exc}" if plan.control_exc else "")
                    + "): its result depends on where or after what it runs",
                )
            )
        elif not plan.done():
            detail = "; ".join(plan.failures[-2:]) or "unfinished"
            reasons.append(
                Reason("weak_tests", "undecided", f"the strength check could not finish: {detail}")
            )


def _expectations_decided(plan: _Plan) -> bool:
    if any(plan.out[i] == "P" for i in plan.sure):
        return True
    ran = [plan.out[i] for i in plan.perts if plan.out[i] != "-"]
    return bool(ran) and len(ran) == len(plan.perts) and all(c == "P" for c in ran)


_OUTCOMES = {
    "P": "passed",
    "F": "failed",
    "X": "exited",
    "T": "timeout",
    "M": "memory",
    "C": "crashed",
    "-": "not_run",
}


def _parse_harness(result: ExecResult | None) -> list[dict[str, Any]] | str:
    """The harness's result list, or why there is none."""
    if result is None:
        return "the sandbox returned no result for the harness"
    if result.status != "pass":
        return f"harness {result.status}: {result.reason or result.exception or ''}".strip()
    for line in reversed(result.stdout_tail.splitlines()):
        if line.startswith(harness_main.MARKER):
            try:
                data = json.loads(line[len(harness_main.MARKER) :])
            except ValueError:
                return "the harness result is not JSON (cut by tail_bytes?)"
            if isinstance(data, list):
                return [d for d in data if isinstance(d, dict)]
    return "the harness printed no result"
