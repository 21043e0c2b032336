"""A stage, described once.

Every stage of the pipeline is one :class:`Stage` value: its folder under ``RUN/``,
the command that runs it, its input stages, its output record type, its config
section, a one-line summary, how it reads its input, the per-batch ``process``
(built by ``processor`` on whichever process runs the batches: the driver, or a
Ray worker) and, where it has one, the whole-stage ``finalize`` (run once, on the
driver). The ordered ``PIPELINE`` (:mod:`selfalign.pipeline`) is a plain list of
them; the run store's stage list, the config sections, the CLI commands,
``generate``, ``status``, the funnel and the dataset card all read that list.

The contract every stage keeps (enforced by :mod:`selfalign.stage_runner`):

* a missing or incomplete input stage raises :class:`MissingInputError`, whose
  message names the command to run;
* a malformed input record is rejected as ``malformed_input`` with its detail
  (:func:`parse_records`), never dropped silently;
* every output's ``parent_id`` is the id of the input that produced it, which is
  what resume relies on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from selfalign.config import ConfigError
from selfalign.records import Record
from selfalign.store import Rejection, RunDir, StageStats, StageStore

if TYPE_CHECKING:
    from selfalign.llm.base import LLM, Generation, Prompt, SamplingParams
    from selfalign.llm.config import ModelConfig
    from selfalign.sandbox import ExecResult, ProcessPool, Program, SandboxConfig

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)

MALFORMED_INPUT = "malformed_input"
"""The reason of an input record that does not parse as its stage's record type."""


class MissingInputError(ConfigError):
    """An input stage has not run, or not to its end, in this run directory."""


@dataclass(frozen=True)
class Section:
    """A config section a command reads: its TOML name, its dataclass, the prefix of its options.

    A prefix keeps two sections of one command apart on the command line (the judge's
    model options are ``--judge-model``, ``--judge-backend``, ... next to the stage's own).
    """

    name: str
    config: type
    option_prefix: str = ""
    inherit: str | None = None
    """A section whose resolved values are this one's defaults (``[judge.model]`` starts
    as ``[model]``: without a judge model of its own, the run judges with its own model)."""


@dataclass
class BatchResult:
    """What a stage's per-batch process returns for one batch of inputs."""

    outputs: list[Record | dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    """Additive numbers summed into ``stats.metrics`` (e.g. ``generated_tokens``)."""


class ProgressSink(Protocol):
    """Where a running stage reports progress. The CLI implements it with rich."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None: ...

    def advance(self, n: int = 1, **metrics: float) -> None: ...

    def stop(self) -> None: ...


class NullProgress:
    """A progress sink that shows nothing (library use, tests)."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        logger.info("%s: starting (%s to do, %d done already)", description, total, completed)

    def advance(self, n: int = 1, **metrics: float) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass
class StageInput:
    """What a stage reads: its input items in order, how to name each, and how many there are."""

    items: Iterable[Any]
    item_id: Callable[[Any], str]
    total: int | None = None
    rejections: list[Rejection] = field(default_factory=list)
    """Malformed records met while reading (counted and written to ``rejected/`` once)."""


class Processor(Protocol):
    """The per-batch process of a stage: a batch of inputs in, outputs and rejections out."""

    def __call__(self, batch: list[Any]) -> BatchResult: ...


@dataclass
class FunnelRow:
    """One stage in the funnel: what it read and wrote, each in its own unit."""

    stage: str
    unit_in: str
    read: int
    dropped: int
    unit_out: str
    written: int
    seconds: float
    complete: bool
    reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline (see the module docstring)."""

    name: str
    """Its folder under ``RUN/``."""
    command: str
    """The ``selfalign`` command that runs it."""
    summary: str
    """One line for ``--help`` and the docs."""
    section: Section
    """Its own config section (``[concepts]``, ``[execute]``, ...)."""
    inputs: tuple[str, ...]
    """Stages that must be complete before it runs."""
    record: type[Record] | None
    """The type of its output records (``None``: it writes no record shards)."""
    read: Callable[[StageContext], StageInput]
    processor: Callable[[StageContext], Processor]
    """Builds the per-batch process where the batches run (it may load a model or a pool)."""
    finalize: Callable[[StageContext, StageStore, StageStats], None] | None = None
    """Whole-stage work after the last batch, on the driver (dedup, metrics, export)."""
    prepare: Callable[[StageContext], None] | None = None
    """Driver-side work before anything else, even for a complete stage (it may clear
    ``_SUCCESS`` to have records redone) and before a forced reset; it may put what the
    processors need into ``ctx.state``."""
    uses: tuple[Section, ...] = ()
    """Shared sections it reads besides its own (``[model]``, ``[sandbox]``, ...)."""
    optional_inputs: tuple[str, ...] = ()
    """Stages it reads when they are complete, and does without otherwise."""
    units: tuple[str, str] = ("records", "records")
    """What one input and one output are, for the funnel (``("tasks", "attempts")``)."""
    funnel_counts: Callable[[StageStats], tuple[int, dict[str, int], int]] | None = None
    """(read, drop reasons, written) in the stage's units, when ``stats.read`` counts
    something else (the seeds stage reads files but its funnel counts functions)."""
    batch_size: Callable[[Any], int] | None = None
    """Inputs per batch from the stage's config; default: its ``batch_size`` field."""
    stop_when: Callable[[StageContext, StageStats], bool] | None = None
    """Checked between batches: stop reading input once it is true (a seed limit reached)."""
    distributed: bool = True
    """Whether its batches may run on other processes (Ray workers). Whole-data-set
    stages (selection, pairs, export) run on the driver."""
    in_generate: bool = True
    """Whether ``selfalign generate`` runs it (the seeds stage needs a source: it does not)."""
    report: Callable[[StageStats], list[Any]] | None = None
    """What its command shows after the stats table: rich renderables (the seeds funnel,
    pass rates by category). Built in the stage's CLI module; only the CLI prints them."""

    @property
    def sections(self) -> tuple[Section, ...]:
        return (self.section, *self.uses)

    def batch_size_for(self, ctx: StageContext) -> int:
        cfg = ctx.config(self.section.name)
        size = self.batch_size(cfg) if self.batch_size is not None else cfg.batch_size
        return int(size)

    def funnel_row(self, stats: StageStats) -> FunnelRow:
        """This stage's funnel row, every number taken from its ``stats.json``."""
        if self.funnel_counts is not None:
            read, reasons, written = self.funnel_counts(stats)
        else:
            read, reasons, written = stats.read, dict(stats.dropped), stats.written
        return FunnelRow(
            stage=self.name,
            unit_in=self.units[0],
            read=read,
            dropped=sum(reasons.values()),
            unit_out=self.units[1],
            written=written,
            seconds=stats.seconds,
            complete=stats.complete,
            reasons=reasons,
        )


def config_key(config: Any) -> str:
    """A stable text key of a config dataclass (equal configs share one model or pool)."""
    data = asdict(config) if is_dataclass(config) and not isinstance(config, type) else config
    return f"{type(config).__name__}:{json.dumps(data, sort_keys=True, default=str)}"


class LazyLLM:
    """A backend loaded on its first ``generate``: resuming a finished stage loads no model."""

    def __init__(self, cfg: ModelConfig, loader: Callable[[ModelConfig], LLM]) -> None:
        self.cfg = cfg
        self.loader = loader
        self.llm: LLM | None = None

    def get(self) -> LLM:
        if self.llm is None:
            self.llm = self.loader(self.cfg)
        return self.llm

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """The ``LLM`` protocol: load on first use, then delegate."""
        return self.get().generate(prompts, params)


class LazySandbox:
    """A warm sandbox pool opened on the first program that really has to run."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.pool: ProcessPool | None = None

    def run(self, programs: Iterable[Program | None]) -> Iterable[ExecResult]:
        """``ProcessPool.run`` (``None`` in ``programs``: nothing to run yet)."""
        if self.pool is None:
            from selfalign.sandbox import open_pool

            pool = open_pool(self.cfg)
            pool.start()
            self.pool = pool
        return self.pool.run(programs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def _default_loader(cfg: ModelConfig) -> LLM:
    from selfalign.llm.base import load_llm

    return load_llm(cfg)


class Resources:
    """The heavy things stages share, made on first use: loaded models and warm sandbox pools.

    Equal configs share one instance, so ``generate`` loads the model once for the
    three model stages (and for the judge, when ``[judge.model]`` is the same model).
    Use it as a context manager: leaving it closes every pool it opened.
    """

    def __init__(self, llm_loader: Callable[[ModelConfig], LLM] | None = None) -> None:
        self.llm_loader = llm_loader or _default_loader
        self._llms: dict[str, LazyLLM] = {}
        self._sandboxes: dict[str, LazySandbox] = {}

    def llm(self, cfg: ModelConfig) -> LazyLLM:
        key = config_key(cfg)
        if key not in self._llms:
            self._llms[key] = LazyLLM(cfg, self.llm_loader)
        return self._llms[key]

    def sandbox(self, cfg: SandboxConfig) -> LazySandbox:
        key = config_key(cfg)
        if key not in self._sandboxes:
            self._sandboxes[key] = LazySandbox(cfg)
        return self._sandboxes[key]

    def release_except(self, keep: Iterable[Any]) -> None:
        """Free every model and pool whose config is not in ``keep`` (the next stage's)."""
        wanted = {config_key(c) for c in keep}
        for key, lazy in self._llms.items():
            if key not in wanted and lazy.llm is not None:
                logger.info("freeing the model %s", lazy.cfg.model)
                lazy.llm = None
        for key, sandbox in self._sandboxes.items():
            if key not in wanted:
                sandbox.close()

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.close()
        for lazy in self._llms.values():
            lazy.llm = None

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class StageContext:
    """Everything a stage's functions get: the run, the resolved configs, shared resources.

    It travels to Ray workers (``resources`` stays behind: each worker makes its own),
    so ``state`` must hold plain, picklable values.
    """

    run: RunDir
    configs: Mapping[str, Any]
    force: bool = False
    resources: Resources | None = None
    state: dict[str, Any] = field(default_factory=dict)
    pipeline: Sequence[Stage] | None = None
    """The pipeline the stage belongs to (default: ``selfalign.pipeline.PIPELINE``); it says
    which command produces each input stage."""

    def config(self, section: str) -> Any:
        try:
            return self.configs[section]
        except KeyError:
            raise ConfigError(f"no [{section}] configuration was resolved for this stage") from None

    def shared(self) -> Resources:
        if self.resources is None:
            self.resources = Resources()
        return self.resources

    def llm(self, section: str = "model") -> LazyLLM:
        """The model of ``[section]``, loaded on its first use."""
        return self.shared().llm(self.config(section))

    def sandbox(self, section: str = "sandbox") -> LazySandbox:
        """The sandbox pool of ``[section]``, opened on its first program."""
        return self.shared().sandbox(self.config(section))

    def stages(self) -> Sequence[Stage]:
        if self.pipeline is None:
            from selfalign.pipeline import PIPELINE

            return PIPELINE
        return self.pipeline

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["resources"] = None
        return state


def parse_records(
    rows: Iterable[dict[str, Any]], record_type: type[R]
) -> tuple[list[R], list[Rejection]]:
    """Parse input rows as ``record_type``; each malformed row becomes a ``malformed_input``
    rejection with what was wrong, never a silent drop."""
    good: list[R] = []
    bad: list[Rejection] = []
    for row in rows:
        try:
            good.append(record_type.from_dict(row))
        except (TypeError, ValueError) as exc:
            bad.append(
                Rejection(
                    id=str(row.get("id")),
                    reason=MALFORMED_INPUT,
                    record=row,
                    detail=f"not a {record_type.__name__}: {exc}",
                )
            )
    return good, bad


def read_stage_records(
    ctx: StageContext, stage: str, limit: int = 0
) -> StageInput:
    """The records of an input stage, in order (the first ``limit`` if set), as a stage input."""
    store = ctx.run.stage(stage)
    written = store.load_stats().written
    total = min(limit, written) if limit else written

    def items() -> Iterable[dict[str, Any]]:
        for index, record in enumerate(store.read()):
            if limit and index >= limit:
                return
            yield record

    return StageInput(items=items(), item_id=record_id, total=total or None)


def record_id(record: dict[str, Any]) -> str:
    return str(record.get("id"))
