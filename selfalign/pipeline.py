"""The pipeline: one ordered list of stages, and everything derived from it.

``PIPELINE`` is the single place that says which stages exist and in which order.
The run store's stage folders, the config sections a file may hold, the CLI's stage
commands, ``selfalign generate``'s order, ``selfalign status``, the funnel and the
dataset card's funnel are all read from it. Adding a stage means writing its module
(a :class:`~selfalign.stage.Stage` value named ``STAGE``) and adding it here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from selfalign.config import ConfigError, resolve, to_dict
from selfalign.curate import execute, export, pairs, select
from selfalign.generation import concepts, respond, tasks
from selfalign.judge import stage as judge
from selfalign.seeds import stage as seeds
from selfalign.stage import (
    FunnelRow,
    ProgressSink,
    Resources,
    Section,
    Stage,
    StageContext,
)
from selfalign.store import RunDir, StageStats

if TYPE_CHECKING:
    from selfalign.llm.base import LLM

PIPELINE: list[Stage] = [
    seeds.STAGE,
    concepts.STAGE,
    tasks.STAGE,
    respond.STAGE,
    execute.STAGE,
    judge.STAGE,
    select.STAGE,
    pairs.STAGE,
    export.STAGE,
]
"""Every stage, in the order data flows through them."""

OTHER_SECTIONS: dict[str, type | None] = {"train": None, "eval": None}
"""Sections of commands that are not stages; they check their own sections."""


def stage_names(pipeline: Sequence[Stage] = PIPELINE) -> list[str]:
    """The stage folders of a run, in pipeline order."""
    return [stage.name for stage in pipeline]


def stage_named(name: str, pipeline: Sequence[Stage] = PIPELINE) -> Stage:
    for stage in pipeline:
        if name in (stage.name, stage.command):
            return stage
    raise ConfigError(
        f"no stage {name!r}; the stages are: {', '.join(stage_names(pipeline))}"
    )


def sections(pipeline: Sequence[Stage] = PIPELINE) -> dict[str, type | None]:
    """Every section a config file may hold and the dataclass that validates it."""
    found: dict[str, type | None] = {}
    for stage in pipeline:
        for section in stage.sections:
            known = found.get(section.name)
            if known is not None and known is not section.config:
                raise TypeError(
                    f"section [{section.name}] is declared with two classes: "
                    f"{known.__name__} and {section.config.__name__}"
                )
            found[section.name] = section.config
    for name, cls in OTHER_SECTIONS.items():
        found.setdefault(name, cls)
    return found


def section_values(
    file_values: Mapping[str, Any], name: str, pipeline: Sequence[Stage] = PIPELINE
) -> dict[str, Any]:
    """The keys of a (possibly dotted) section, without the sub-tables that are sections
    of their own (``[judge]`` minus ``[judge.model]``)."""
    node: Any = file_values
    for part in name.split("."):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"[{name}] must be a table of key = value")
    nested = {k for k in sections(pipeline) if k.startswith(name + ".")}
    return {k: v for k, v in node.items() if f"{name}.{k}" not in nested}


def inherited_values(
    section: Section,
    file_values: Mapping[str, Any],
    resolved: Mapping[str, Any],
    pipeline: Sequence[Stage] = PIPELINE,
) -> dict[str, Any]:
    """The section's file values over those of the section it inherits from (``inherit``):
    that section's resolved config when ``resolved`` has it, else its file values."""
    own = section_values(file_values, section.name, pipeline)
    if section.inherit is None:
        return own
    parent = resolved.get(section.inherit)
    if parent is None:
        base = section_values(file_values, section.inherit, pipeline)
    else:
        base = to_dict(parent)
    return {**base, **own}


def resolve_section(
    section: Section,
    file_values: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    pipeline: Sequence[Stage] = PIPELINE,
    resolved: Mapping[str, Any] | None = None,
) -> Any:
    """A section's dataclass from the config file's values, then the given overrides.

    ``resolved`` holds sections already resolved for the same command, which an
    inheriting section (``[judge.model]`` from ``[model]``) starts from.
    """
    values = {section.name: inherited_values(section, file_values, resolved or {}, pipeline)}
    return resolve(section.config, section.name, values, overrides or {})


def funnel(run: RunDir, pipeline: Sequence[Stage] = PIPELINE) -> list[FunnelRow]:
    """One row per stage that has run, in pipeline order, from each stage's stats.json."""
    rows = []
    for stage in pipeline:
        store = run.stage(stage.name)
        if store.stats_path.is_file():
            rows.append(stage.funnel_row(store.load_stats()))
    return rows


def context(
    run: RunDir,
    configs: Mapping[str, Any],
    *,
    force: bool = False,
    resources: Resources | None = None,
    pipeline: Sequence[Stage] = PIPELINE,
) -> StageContext:
    return StageContext(
        run=run, configs=dict(configs), force=force, resources=resources, pipeline=pipeline
    )


def run_named(
    run: RunDir,
    name: str,
    configs: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
    progress: ProgressSink | None = None,
    resources: Resources | None = None,
    executor: Any = None,
    pipeline: Sequence[Stage] = PIPELINE,
    llm: LLM | None = None,
) -> StageStats:
    """Run one stage by name (or command) from library code; sections not given use defaults.

    ``llm`` hands the model stages an engine of your own instead of loading ``[model]``.
    """
    from selfalign.stage_runner import run_stage

    if llm is not None:
        engine = llm
        resources = resources or Resources(llm_loader=lambda cfg: engine)
    stage = stage_named(name, pipeline)
    resolved = dict(configs or {})
    for section in stage.sections:
        if section.name not in resolved:
            resolved[section.name] = resolve_section(
                section, {}, pipeline=pipeline, resolved=resolved
            )
    ctx = context(run, resolved, force=force, resources=resources, pipeline=pipeline)
    return run_stage(stage, ctx, progress=progress, executor=executor)
