"""The ``selfalign`` command line. Thin: each command parses options and calls the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from selfalign import __version__
from selfalign.cli_support import console, funnel_table, run_options, with_cli_errors
from selfalign.store import RunDir

PIPELINE = """\b
seeds -> concepts -> tasks -> respond -> execute -> select -> export -> train -> eval
 (S)     (S->C)     (C->I)   (I->R)     (sandbox)  (dedup,    (HF data   (TRL)   (HumanEval)
                                                    decontam)  + card)
"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="Self-align a base code model: harvest seed functions, let the model write "
    "tasks and tested answers, keep what passes in a sandbox, and fine-tune on it.\n\n"
    + PIPELINE,
)
@click.version_option(__version__, prog_name="selfalign")
def cli() -> None:
    pass


def _not_built(name: str, issue: int, summary: str) -> click.Command:
    """A placeholder for a stage that is not built yet: it says so and exits non-zero."""

    @click.command(name=name, help=f"{summary} (not built yet: issue {issue}).")
    @run_options
    def command(run_dir: Path, config_file: Path | None, force: bool, log_level: str) -> None:
        console.print(f"[red]`selfalign {name}` is not built yet[/red] (tracked in issue {issue}).")
        sys.exit(2)

    return command


@cli.command(name="status")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/default"),
    show_default=True,
    help="Run directory to summarise.",
)
@with_cli_errors
def status(run_dir: Path) -> None:
    """Show the funnel of a run: every stage's read / written / dropped counts."""
    run = RunDir(run_dir)
    if not run.funnel():
        console.print(f"no stage has run in {run_dir} yet")
        return
    console.print(funnel_table(run))


def _mount_commands() -> None:
    for name, issue, summary in (
        ("seeds", 3, "Harvest seed functions from source code (S)"),
        ("concepts", 5, "List the programming concepts of each seed (S->C)"),
        ("tasks", 5, "Write a new coding task from each seed's concepts (C->I)"),
        ("respond", 5, "Sample responses with tests for each task (I->R)"),
        ("execute", 6, "Run every response's tests in the sandbox"),
        ("select", 6, "Keep one passing response per task, dedup, decontaminate"),
        ("export", 6, "Write the instruction data set, preference pairs and card"),
        ("generate", 6, "Run every data stage in order"),
        ("train", 7, "Fine-tune a model on the data set with TRL (sft, dpo)"),
        ("eval", 7, "Evaluate a model on HumanEval in the sandbox"),
        ("sandbox", 4, "Build, run and clean the execution sandbox"),
    ):
        cli.add_command(_not_built(name, issue, summary))


_mount_commands()


def main() -> None:
    cli(prog_name="selfalign")


if __name__ == "__main__":
    main()
