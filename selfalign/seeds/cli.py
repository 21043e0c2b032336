"""What ``selfalign seeds`` shows after its stats: the funnel of the seeds stage.

The command itself is built from the pipeline (:mod:`selfalign.commands`).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from selfalign.store import StageStats


def funnel_rows_table(stats: StageStats) -> Table:
    """files → functions → after each filter → seeds, with how many each step removed."""
    from selfalign.seeds.stage import funnel

    table = Table(title="seeds funnel", title_justify="left")
    table.add_column("step")
    table.add_column("count", justify="right")
    table.add_column("removed", justify="right")
    previous: int | None = None
    for label, count in funnel(stats):
        removed = "" if previous is None or label == "functions" else str(previous - count)
        table.add_row(label, str(count), removed)
        previous = count
    return table


def seeds_report(stats: StageStats) -> list[Any]:
    """The seeds funnel: files → functions → after each filter → seeds."""
    from selfalign.seeds.stage import funnel

    return [funnel_rows_table(stats)] if funnel(stats) else []
