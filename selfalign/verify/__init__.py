"""Verification: a pass counts only when the tests could have failed.

After an answer's program passes, its tests run again against a null implementation
of the solution, with changed expected values and against mutants of the solution,
in the same sandbox pool; static checks read the tests (vacuous tests) and the
solution (gaming). :class:`Verifier` is the one entry point (docs/verification.md).
"""

from __future__ import annotations

from selfalign.verify.findings import Finding
from selfalign.verify.gaming import GAMING_FAMILIES, find_gaming
from selfalign.verify.mutate import OPERATORS, Mutant, all_mutants, select_mutants
from selfalign.verify.null import NullImplementation, null_implementation
from selfalign.verify.perturb import Perturbation, perturb_expectations
from selfalign.verify.static_tests import CHECK_FAMILIES, TestAnalysis, analyse_tests
from selfalign.verify.verifier import (
    REASON_CODES,
    STRENGTHS,
    Candidate,
    PoolRunner,
    Reason,
    RunPrograms,
    StrengthCheck,
    StrengthConfig,
    Verification,
    Verifier,
    check_stream,
    pool_runner,
)

__all__ = [
    "CHECK_FAMILIES",
    "GAMING_FAMILIES",
    "OPERATORS",
    "REASON_CODES",
    "STRENGTHS",
    "Candidate",
    "Finding",
    "Mutant",
    "NullImplementation",
    "Perturbation",
    "PoolRunner",
    "Reason",
    "RunPrograms",
    "StrengthCheck",
    "StrengthConfig",
    "TestAnalysis",
    "Verification",
    "Verifier",
    "all_mutants",
    "analyse_tests",
    "check_stream",
    "find_gaming",
    "null_implementation",
    "perturb_expectations",
    "pool_runner",
    "select_mutants",
]
