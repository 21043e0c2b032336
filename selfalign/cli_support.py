"""Shared pieces of the command line: options generated from config dataclasses,
a rich progress bar, stats tables and error handling.

Only the CLI layer prints; stage code logs and reports progress through
``selfalign.stage.ProgressSink``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import sys
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from selfalign.config import ConfigError, check_sections, field_choices, field_help, load_toml
from selfalign.config import resolve as resolve_config
from selfalign.errors import UserError
from selfalign.stage import FunnelRow, Section, Stage
from selfalign.store import StageStats


def _log_width() -> int | None:
    # Rich draws at 80 columns when stderr is not a terminal, which squeezes the funnel
    # into ellipses in a log file; logs have room.
    if sys.stderr.isatty() or os.environ.get("COLUMNS"):
        return None
    return 140


console = Console(stderr=True, width=_log_width())
"""Everything the CLI shows goes to stderr, so stdout stays free for data."""

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


# -- progress ------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    """Items per second, plus generated tokens per second when the stage reports them."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("")
        rate = task.completed / elapsed if task.completed else 0.0
        parts = [f"{rate:.2f} it/s"]
        tokens = task.fields.get("tokens", 0.0)
        if tokens:
            parts.append(f"{tokens / elapsed:.1f} tok/s")
        return Text("  ".join(parts), style="cyan")


class RichProgress:
    """A ``ProgressSink`` drawn with rich: bar, count, rate, tokens/s, elapsed and ETA."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None
        self._tokens = 0.0
        self._done_before = 0

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._progress.start()
        # The rate counts only this run's work; completed items of an earlier run
        # are shown in the bar but not in the rate.
        self._done_before = completed
        self._task = self._progress.add_task(description, total=total, completed=0, tokens=0.0)
        if completed and total:
            self._progress.update(self._task, total=max(total - completed, 0))

    def advance(self, n: int = 1, **metrics: float) -> None:
        if self._progress is None:
            return
        self._tokens += metrics.get("generated_tokens", 0.0)
        self._progress.update(self._task, advance=n, tokens=self._tokens)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- options from config dataclasses ---------------------------------------------


def _click_type(tp: Any, f: dataclasses.Field[Any]) -> tuple[Any, bool]:
    """The click type for a field annotation, and whether it is a comma-separated list."""
    choices = field_choices(f)
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin is not None and origin is not list and args:
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is list:
        return str, True
    if choices:
        return click.Choice(choices), False
    return {int: int, float: float, str: str, bool: bool}.get(tp, str), False


def option_dest(prefix: str, name: str) -> str:
    """The keyword a field's option arrives under (``judge-`` + ``model`` -> ``judge_model``)."""
    return prefix.replace("-", "_") + name


def config_options(cls: type, prefix: str = "") -> Callable[[F], F]:
    """Add one ``--option`` per field of the config dataclass ``cls``, with its help text.

    Options default to ``None`` (not given), so only what the user types overrides
    the config file. Dict-valued fields are set in the TOML file only. ``prefix``
    (e.g. ``judge-``) names the options of a second section of the same command.
    """
    hints = typing.get_type_hints(cls)

    def decorate(func: F) -> F:
        for f in reversed(dataclasses.fields(cls)):
            tp = hints[f.name]
            if typing.get_origin(tp) is dict:
                continue
            dest = option_dest(prefix, f.name)
            flag = "--" + dest.replace("_", "-")
            default = _default_of(f)
            help_text = field_help(f)
            if default is not None and default != [] and default != "":
                help_text += f" [default: {_show_default(default)}]"
            click_type, is_list = _click_type(tp, f)
            if click_type is bool:
                decl = f"{flag}/--no-{dest.replace('_', '-')}"
                func = click.option(decl, dest, default=None, help=help_text)(func)
            else:
                if is_list:
                    help_text += " (comma-separated)"
                func = click.option(flag, dest, type=click_type, default=None, help=help_text)(
                    func
                )
        return func

    return decorate


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _show_default(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def take_config(
    cls: type[C],
    section: str,
    kwargs: dict[str, Any],
    file_values: Mapping[str, Any],
    prefix: str = "",
) -> C:
    """Pop the options of ``cls`` out of ``kwargs`` and resolve them over the config file."""
    hints = typing.get_type_hints(cls)
    overrides: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        dest = option_dest(prefix, f.name)
        if dest not in kwargs:
            continue
        value = kwargs.pop(dest)
        if value is not None and typing.get_origin(hints[f.name]) is list:
            value = [v.strip() for v in str(value).split(",") if v.strip()]
            item_tp = typing.get_args(hints[f.name])[0]
            if item_tp in (int, float):
                value = [item_tp(v) for v in value]
        overrides[f.name] = value
    return resolve_config(cls, section, file_values, overrides)


def section_options(section: Section) -> Callable[[F], F]:
    """The options of one config section, with its prefix."""
    return config_options(section.config, section.option_prefix)


def take_section(
    section: Section,
    kwargs: dict[str, Any],
    file_values: Mapping[str, Any],
    pipeline: Sequence[Stage] | None = None,
    resolved: Mapping[str, Any] | None = None,
) -> Any:
    """A section's config: the config file's values, then the options the user typed.

    ``resolved`` holds the command's sections resolved so far (an inheriting section
    starts from its parent's values there)."""
    from selfalign.pipeline import PIPELINE, inherited_values

    values = {
        section.name: inherited_values(section, file_values, resolved or {}, pipeline or PIPELINE)
    }
    return take_config(section.config, section.name, kwargs, values, section.option_prefix)


def log_level_option(default: str = "warning") -> Callable[[F], F]:
    """``--log-level``: how much the library logs."""
    return click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default=default,
        show_default=True,
        help="How much the library logs.",
    )


def config_file_option(help_text: str) -> Callable[[F], F]:
    """``--config FILE``: the TOML file whose sections set the command's options."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


def out_dir_option(help_text: str) -> Callable[[F], F]:
    """``--out DIR``: where a command writes its results."""
    return click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help=help_text
    )


def run_options(func: F) -> F:
    """``--run``, ``--config``, ``--force`` and ``--log-level``: every stage command has them."""
    func = log_level_option()(func)
    func = click.option(
        "--force",
        is_flag=True,
        help="Run the stage again from scratch even if it is complete (deletes its output).",
    )(func)
    func = config_file_option(
        "TOML file whose sections set this stage's options; command-line options win."
    )(func)
    return run_dir_option(
        "Run directory: every stage reads its input from and writes its output here."
    )(func)


def run_dir_option(help_text: str) -> Callable[[F], F]:
    """``--run DIR`` (default ``runs/default``)."""
    return click.option(
        "--run",
        "run_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("runs/default"),
        show_default=True,
        help=help_text,
    )


def read_config_file(
    path: Path | None, pipeline: Sequence[Stage] | None = None
) -> dict[str, Any]:
    """Load ``--config``; a section that no command of the pipeline knows fails at once."""
    from selfalign.pipeline import PIPELINE, sections

    values = load_toml(path)
    check_sections(values, {name.split(".")[0]: None for name in sections(pipeline or PIPELINE)})
    return values


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn expected failures into a one-line message and an exit code, never a traceback."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except ConfigError as exc:
        # soft_wrap: a command to copy from the message must not be broken over lines.
        console.print(f"[red]configuration error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except UserError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted:[/yellow] the batch in flight was dropped; "
            "run the same command again to resume."
        )
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)


def with_cli_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with cli_errors():
            return func(*args, **kwargs)

    return typing.cast(F, wrapper)


# -- tables --------------------------------------------------------------------


def stats_table(stats: StageStats) -> Table:
    """One stage's summary: read, written, each drop reason, seconds."""
    state = "complete" if stats.complete else "incomplete"
    table = Table(title=f"{stats.stage} ({state}, {stats.seconds:.1f}s)", title_justify="left")
    table.add_column("counter")
    table.add_column("value", justify="right")
    table.add_row("read", str(stats.read))
    table.add_row("written", str(stats.written), style="green")
    for reason, count in sorted(stats.dropped.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"dropped: {reason}", str(count), style="yellow")
    for key, value in stats.metrics.items():
        if isinstance(value, float):
            value = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
        if isinstance(value, int | str):
            table.add_row(key, str(value), style="dim")
    return table


def funnel_table(rows: list[FunnelRow], title: str) -> Table:
    """Every stage of a run in one table: the funnel, each number in its stage's unit."""
    table = Table(title=title, title_justify="left")
    columns = ("stage", "input", "read", "dropped", "output", "written", "top drop reasons")
    for column in (*columns, "seconds", "done"):
        left = column in ("stage", "input", "output", "top drop reasons")
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        top = ", ".join(
            f"{r} {n}" for r, n in sorted(row.reasons.items(), key=lambda kv: -kv[1])[:3]
        )
        table.add_row(
            row.stage,
            row.unit_in,
            str(row.read),
            str(row.dropped),
            row.unit_out,
            str(row.written),
            top,
            f"{row.seconds:.1f}",
            "yes" if row.complete else "no",
        )
    return table


def show_stats(stats: StageStats) -> None:
    console.print(stats_table(stats))
