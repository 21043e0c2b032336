"""The verifier's options: a light module, so a stage can declare its section at import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

REASON_CODES = ("gamed_tests", "vacuous_tests", "weak_tests")
"""Why a passing answer's tests prove nothing, the most telling first."""


@dataclass
class StrengthConfig:
    """How hard the verifier tries to show that an answer's tests could have failed
    (section ``[strength]``, read by ``execute``; docs/verification.md)."""

    enabled: bool = field(
        default=True,
        metadata={"help": "Check the strength of every passing answer's tests. Off, a pass "
                  "counts as it is (the selection still drops vacuous tests statically)."},
    )

    null_check: bool = field(
        default=True,
        metadata={"help": "Run the tests against the null implementation (every function "
                  "returns None); tests that still pass are weak (null_passes)."},
    )
    mutants: int = field(
        default=8,
        metadata={"help": "Mutants of the solution per answer (0 disables the mutation check)."},
    )
    min_mutation_score: float = field(
        default=0.6,
        metadata={"help": "Share of the mutants the tests must kill to be strong "
                  "(mutants_survive below it)."},
    )
    expectation_checks: int = field(
        default=3,
        metadata={"help": "Copies of the tests with one expected value changed (0 disables); "
                  "if every copy still passes, the checks ignore what they expect."},
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the mutant and expectation choice."}
    )
    static_checks: bool = field(
        default=True,
        metadata={"help": "Static analysis of the tests (vacuous_tests) and of the solution "
                  "(gamed_tests)."},
    )
    slow_s: float = field(
        default=0.05,
        metadata={"help": "An answer whose program took longer than this (seconds, in the "
                  "pool) is checked with slow_mutants mutants: each variant of it costs a "
                  "whole run."},
    )
    slow_mutants: int = field(
        default=3, metadata={"help": "Mutants per answer whose program is slow (see slow_s)."}
    )
    early_stop: bool = field(
        default=True,
        metadata={"help": "Stop running mutants once the threshold is met or cannot be; the "
                  "decision is the same, the mutation score counts the mutants run."},
    )
    cpu_factor: float = field(
        default=3.0,
        metadata={"help": "CPU-time limit of a variant, as a multiple of the original "
                  "program's run time in the pool (a mutant over it counts as killed)."},
    )
    min_cpu_s: float = field(
        default=0.01, metadata={"help": "Smallest CPU-time limit of a variant, in seconds."}
    )
    wall_factor: float = field(
        default=10.0,
        metadata={"help": "Wall-clock limit of a variant, as a multiple of the original "
                  "program's run time."},
    )
    min_wall_s: float = field(
        default=1.0, metadata={"help": "Smallest wall-clock limit of a variant, in seconds."}
    )
    pack_s: float = field(
        default=0.3,
        metadata={"help": "Expected seconds of work packed into one harness program "
                  "(several answers share one program)."},
    )
    max_pack: int = field(
        default=24, metadata={"help": "Most answers checked by one harness program."}
    )
    max_waves: int = field(
        default=3,
        metadata={"help": "Rounds of harness programs; answers still unfinished after them "
                  "are weak (undecided)."},
    )

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("mutants", self.mutants >= 0, "use 0 to disable mutants, or e.g. mutants=8"),
            ("slow_mutants", self.slow_mutants >= 0, "use slow_mutants >= 0, e.g. 3"),
            ("slow_s", self.slow_s > 0, "use a positive slow_s, e.g. 0.05"),
            ("min_mutation_score", 0.0 <= self.min_mutation_score <= 1.0,
             "use a share between 0 and 1, e.g. min_mutation_score=0.6"),
            ("expectation_checks", self.expectation_checks >= 0,
             "use 0 to disable, or e.g. expectation_checks=3"),
            ("cpu_factor", self.cpu_factor >= 1.0, "use cpu_factor >= 1, e.g. 3"),
            ("min_cpu_s", self.min_cpu_s > 0, "use a positive min_cpu_s, e.g. 0.02"),
            ("wall_factor", self.wall_factor >= 1.0, "use wall_factor >= 1, e.g. 10"),
            ("min_wall_s", self.min_wall_s > 0, "use a positive min_wall_s, e.g. 1.0"),
            ("pack_s", self.pack_s > 0, "use a positive pack_s, e.g. 0.3"),
            ("max_pack", self.max_pack >= 1, "use max_pack >= 1"),
            ("max_waves", self.max_waves >= 1, "use max_waves >= 1"),
        ]
        for name, ok, fix in checks:
            if not ok:
                raise ValueError(f"invalid {name}={getattr(self, name)!r}: {fix}")

    @property
    def dynamic(self) -> bool:
        return self.null_check or self.mutants > 0 or self.expectation_checks > 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrengthConfig:
        """From a config section; unknown keys are an error that names the known ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"unknown strength option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        return cls(**dict(data))
