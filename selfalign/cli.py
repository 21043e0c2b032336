"""The ``selfalign`` command line. Thin: each command parses options and calls the library.

The stage commands, ``generate`` and ``status`` are built from the pipeline
(:func:`make_cli`), so a new stage gets its command by being in ``PIPELINE``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from selfalign import __version__
from selfalign.stage import Stage


def _pipeline_help(pipeline: Sequence[Stage]) -> str:
    arrows = " -> ".join(stage.command for stage in pipeline)
    lines = [f"  {stage.command:<9} {stage.summary}" for stage in pipeline]
    return "\b\n" + arrows + " -> train -> eval\n\n\b\n" + "\n".join(lines)


def make_cli(pipeline: Sequence[Stage]) -> click.Group:
    """The whole command line for ``pipeline``: its stage commands, generate, status, and the
    train, eval and sandbox groups."""
    from selfalign.commands import generate_command, stage_command, status_command
    from selfalign.evaluate.cli import eval_group
    from selfalign.sandbox.cli import sandbox_group
    from selfalign.train.cli import train_group

    @click.group(
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        help="Self-align a base code model: harvest seed functions, let the model write "
        "tasks and tested answers, keep what passes in a sandbox, and fine-tune on it.\n\n"
        + _pipeline_help(pipeline),
    )
    @click.version_option(__version__, prog_name="selfalign")
    def cli() -> None:
        pass

    for stage in pipeline:
        cli.add_command(stage_command(stage, pipeline))
    cli.add_command(generate_command(pipeline))
    cli.add_command(status_command(pipeline))
    for group in (train_group, eval_group, sandbox_group):
        cli.add_command(group)
    return cli


def _quiet_library_progress() -> None:
    """In a non-interactive log, the tqdm bars of datasets, transformers and TRL are
    carriage-return noise; our own rich progress says what they would."""
    if sys.stderr.isatty():
        return
    names = ("TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")
    for name in names:
        os.environ.setdefault(name, "1")


def _cli() -> click.Group:
    from selfalign.pipeline import PIPELINE

    return make_cli(PIPELINE)


cli = _cli()


def main() -> None:
    _quiet_library_progress()
    cli(prog_name="selfalign")


if __name__ == "__main__":
    main()
