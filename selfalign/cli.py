"""The ``selfalign`` command line. Thin: each command parses options and calls the library."""

from __future__ import annotations

from pathlib import Path

import click

from selfalign import __version__
from selfalign.cli_support import console, funnel_table, with_cli_errors
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
    """Attach every stage's command. Their modules import only light config code."""
    from selfalign.curate.cli import execute_command, export_command, select_command
    from selfalign.evaluate.cli import eval_group
    from selfalign.generation.cli import concepts_command, respond_command, tasks_command
    from selfalign.pipeline import generate_command
    from selfalign.sandbox.cli import sandbox_group
    from selfalign.seeds.cli import seeds_command
    from selfalign.train.cli import train_group

    for command in (
        seeds_command,
        concepts_command,
        tasks_command,
        respond_command,
        execute_command,
        select_command,
        export_command,
        generate_command,
        train_group,
        eval_group,
        sandbox_group,
    ):
        cli.add_command(command)


_mount_commands()


def main() -> None:
    cli(prog_name="selfalign")


if __name__ == "__main__":
    main()
