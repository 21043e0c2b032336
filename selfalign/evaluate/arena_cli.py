"""`selfalign eval arena` and the arena's side-by-side table (for `selfalign eval compare`).

Each of the three models (the evaluated model, the baseline, the judge) is a full
`ModelConfig`: from its config-file section ``[eval.arena.model]``,
``[eval.arena.baseline]``, ``[eval.arena.judge]``, overridden by its options
``--model`` / ``--model-backend`` / ``--model-base-url`` / ``--model-mode`` (and the
same with ``--baseline-`` and ``--judge-``). The arena's own settings come from
``[eval.arena]`` and the options generated from `ArenaConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from selfalign.cli_support import (
    RichProgress,
    config_file_option,
    config_options,
    console,
    log_level_option,
    out_dir_option,
    read_config_file,
    setup_logging,
    take_config,
    with_cli_errors,
)
from selfalign.config import ConfigError, resolve
from selfalign.evaluate.arena import GROUPINGS, ArenaComparison, ArenaConfig, Role
from selfalign.evaluate.arena_score import ArenaStats, stats_from_dict
from selfalign.llm.config import BACKEND_NAMES, MODES

ROLES = ("model", "baseline", "judge")
_ROLE_HELP = {
    "model": "the model evaluated",
    "baseline": "the model it is compared with",
    "judge": "the model that compares the two answers",
}


def _slug(model: str) -> str:
    tail = model.rstrip("/").split("/")[-1] or model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "model"


def _role_options(func: Any) -> Any:
    for role in reversed(ROLES):
        what = _ROLE_HELP[role]
        func = click.option(
            f"--{role}-mode",
            f"{role}_mode",
            type=click.Choice(MODES),
            default=None,
            help=f"Prompt shape for {what}: chat (instruct models) or completion (base models: "
            "a plain ### User / ### Assistant transcript) [default: chat].",
        )(func)
        func = click.option(
            f"--{role}-base-url",
            f"{role}_base_url",
            default=None,
            help=f"openai backend: the server of {what} (…/v1).",
        )(func)
        func = click.option(
            f"--{role}-backend",
            f"{role}_backend",
            type=click.Choice(BACKEND_NAMES),
            default=None,
            help=f"Inference backend of {what} [default: transformers].",
        )(func)
        func = click.option(
            f"--{role}",
            f"{role}_name",
            default=None,
            help=f"{what.capitalize()}: 'embedded' (SmolLM2-135M-Instruct), a trained output "
            "directory or a hub id; for an openai backend, the name the server expects"
            + (
                " [default: embedded]."
                if role != "baseline"
                else " (or take the baseline's answers from the questions file: --baseline-column)."
            ),
        )(func)
    return func


def _role_section(file_values: dict[str, Any], role: str) -> dict[str, Any] | None:
    arena = file_values.get("eval", {})
    arena = arena.get("arena", {}) if isinstance(arena, dict) else {}
    section = arena.get(role) if isinstance(arena, dict) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"[eval.arena.{role}] must be a table of key = value")
    return section


def _arena_section(file_values: dict[str, Any]) -> dict[str, Any]:
    section = file_values.get("eval", {})
    section = section.get("arena", {}) if isinstance(section, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError("[eval.arena] must be a table of key = value")
    # The roles' sub-tables are ModelConfig sections of their own.
    return {k: v for k, v in section.items() if k not in ROLES}


def build_role(
    role: str, file_values: dict[str, Any], options: dict[str, Any], device: str | None
) -> Role | None:
    """The role's model from its config section and options; None for a baseline not given."""
    from selfalign.llm.config import ModelConfig

    name = options.pop(f"{role}_name")
    overrides = {
        "model": name,
        "backend": options.pop(f"{role}_backend"),
        "base_url": options.pop(f"{role}_base_url"),
        "mode": options.pop(f"{role}_mode"),
    }
    section = _role_section(file_values, role)
    if role == "baseline" and section is None and all(v is None for v in overrides.values()):
        return None
    values = dict(section or {})
    if device is not None and (overrides["backend"] or values.get("backend")) in (
        None,
        "transformers",
    ):
        overrides["device"] = device
    where = f"eval.arena.{role}"
    cfg = resolve(ModelConfig, where, {where: values}, overrides)
    return Role(name=name or str(values.get("model") or cfg.model), config=cfg)


@click.command(name="arena")
@_role_options
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="transformers backend: where the models run [default: auto].",
)
@out_dir_option(
    "Directory for results.jsonl (per question) and summary.json "
    "[default: runs/eval/arena-<model>-vs-<baseline>]."
)
@config_file_option(
    "TOML file: [eval.arena] sets these options, [eval.arena.model], "
    "[eval.arena.baseline] and [eval.arena.judge] the three models; command-line options win."
)
@log_level_option()
@config_options(ArenaConfig)
@with_cli_errors
def arena_command(
    device: str | None,
    out: Path | None,
    config_file: Path | None,
    log_level: str,
    **options: Any,
) -> None:
    """Judge a model's answers against a baseline's, pairwise, positions swapped (CodeArena).

    Every question is answered by --model and by --baseline (or the baseline answers
    come from the questions file: --baseline-column); --judge compares the two answers
    twice, once in each order, and the summed verdicts give a win, tie or loss per
    question. Prints win rate, tie rate and score with 95% bootstrap intervals,
    overall and per category, language and difficulty.
    """
    from selfalign.evaluate.arena import run

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    try:
        cfg = take_config(
            ArenaConfig, "eval.arena", options, {"eval.arena": _arena_section(file_values)}
        )
        roles = {role: build_role(role, file_values, options, device) for role in ROLES}
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    model, baseline, judge = roles["model"], roles["baseline"], roles["judge"]
    assert model is not None and judge is not None  # only the baseline may be absent
    if baseline is not None and cfg.baseline_column is not None:
        raise ConfigError(
            "both a baseline model and --baseline-column were given: keep --baseline MODEL "
            "to generate the baseline's answers, or --baseline-column to read them"
        )
    if baseline is None and cfg.baseline_column is None:
        raise ConfigError(
            "no baseline: pass --baseline MODEL (e.g. --baseline embedded), or "
            "--baseline-column COLUMN (or auto) when the questions file holds its answers"
        )
    opponent = baseline.name if baseline is not None else str(cfg.baseline_column)
    out = out or Path("runs/eval") / f"arena-{_slug(model.name)}-vs-{_slug(opponent)}"
    try:
        report = run(
            cfg, model=model, baseline=baseline, judge=judge, out=out, progress=RichProgress()
        )
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from exc
    console.print(arena_table(report.summary))
    games = report.summary["games"]
    console.print(
        f"games: {games['total']}, verdicts {games['verdicts']}, "
        f"asked to conclude {games['needed_follow_up']}, missing {games['missing']}"
    )
    skipped = report.summary["skipped_questions"]
    if skipped:
        console.print(f"[yellow]{len(skipped)} question(s) skipped[/yellow]: see summary.json")
    console.print(f"results in {out}")


# -- tables ----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(stats: ArenaStats) -> str:
    if stats.score_ci is None:
        return "-"
    return f"{100 * stats.score_ci.low:.1f}–{100 * stats.score_ci.high:.1f}"


def _row(label: str, stats: ArenaStats) -> list[str]:
    return [
        label,
        str(stats.n),
        f"{stats.wins}/{stats.ties}/{stats.losses}",
        str(stats.missing),
        _pct(stats.win_rate),
        _pct(stats.tie_rate),
        _pct(stats.score),
        _ci(stats),
    ]


def arena_table(summary: dict[str, Any]) -> Table:
    """One arena run: the overall line, then one line per category, language and difficulty."""
    table = Table(
        title=f"arena: {summary['model']} vs {summary['baseline']} (judge: {summary['judge']})",
        title_justify="left",
        caption="W/T/L: questions won, tied, lost; missing: left out for want of verdicts "
        "(--missing); score = (2·wins + ties) / (2·n)",
        caption_justify="left",
    )
    table.add_column("group", overflow="fold")
    for column in ("n", "W/T/L", "missing", "win", "tie", "score", "95% CI"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row(*_row("overall", stats_from_dict(summary["overall"])), style="bold green")
    for grouping in GROUPINGS:
        groups = summary.get(f"by_{grouping}", {})
        table.add_section()
        table.add_row(f"[dim]by {grouping}[/dim]", *[""] * 7)
        for name, values in groups.items():
            table.add_row(*_row(f"  {name}", stats_from_dict(values)))
    return table


def arena_compare_table(comparison: ArenaComparison, *, groups: Sequence[str] = GROUPINGS) -> Table:
    """Runs side by side: score (interval), win and tie rates, then the score per group."""
    runs = comparison.runs
    table = Table(title="arena", title_justify="left")
    table.add_column("metric")
    for run in runs:
        table.add_column(run.model, justify="right")
    if len(runs) > 1:
        table.add_column("change", justify="right")

    def add(label: str, values: list[ArenaStats | None], what: str) -> None:
        cells = []
        numbers: list[float | None] = []
        for stats in values:
            value = None if stats is None else getattr(stats, what)
            numbers.append(value)
            cell = _pct(value)
            if what == "score" and stats is not None and stats.score_ci is not None:
                cell += f" ({_ci(stats)})"
            cells.append(cell)
        row = [label, *cells]
        if len(values) > 1:
            first, last = numbers[0], numbers[-1]
            row.append("-" if first is None or last is None else f"{100 * (last - first):+.1f} pts")
        table.add_row(*row)

    overall = [r.overall for r in runs]
    add("score (95% CI)", list(overall), "score")
    add("win rate", list(overall), "win_rate")
    add("tie rate", list(overall), "tie_rate")
    scored = [str(s.n) for s in overall]
    table.add_row("questions scored", *scored, *([""] if len(runs) > 1 else []))
    for grouping in groups:
        names = sorted({n for r in runs for n in r.groups.get(grouping, {})})
        if not names:
            continue
        table.add_section()
        for name in names:
            add(f"score, {grouping}: {name}", [r.groups[grouping].get(name) for r in runs], "score")
    return table


def show_arena_comparison(paths: Sequence[Path]) -> None:
    """Print arena runs side by side (what `selfalign eval compare` shows for arena summaries)."""
    from selfalign.evaluate.arena import compare

    comparison = compare(list(paths))
    console.print(arena_compare_table(comparison))
    if not comparison.same_opponent():
        pairs = ", ".join(f"{r.model}: vs {r.baseline}, judge {r.judge}" for r in comparison.runs)
        console.print(
            f"[yellow]the runs faced different baselines or judges ({pairs}): "
            "their scores are not on one scale[/yellow]"
        )
    if len(comparison.runs) > 1:
        console.print(
            f"questions better in the second: {len(comparison.improved)}  "
            f"worse in the second: {len(comparison.worsened)}"
        )
