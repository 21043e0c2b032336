"""What the ``execute`` and ``export`` commands show after their stats (rich tables).

The commands themselves are built from the pipeline (:mod:`selfalign.commands`).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from selfalign.store import StageStats


def rate_table(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    """Attempts, passes, pass rate and executability rate per group."""
    table = Table(title=title, title_justify="left")
    for column in ("group", "attempts", "passed", "pass rate", "executable"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, g in groups.items():
        table.add_row(
            name,
            str(g["attempts"]),
            str(g["passed"]),
            f"{100 * g['pass_rate']:.1f}%",
            f"{100 * g['executable_rate']:.1f}%",
        )
    return table


def execute_report(stats: StageStats) -> list[Any]:
    """The pass and executability rates, overall and by category, difficulty, parse outcome."""
    m = stats.metrics
    if not m.get("attempts"):
        return []
    out: list[Any] = [
        Text.from_markup(
            f"pass rate [bold]{100 * m['pass_rate']:.1f}%[/bold], executable "
            f"{100 * m['executable_rate']:.1f}%, tasks with a pass "
            f"{m['tasks_with_pass']}/{m['tasks']}"
        )
    ]
    for title, key in (
        ("by category", "by_category"),
        ("by difficulty", "by_difficulty"),
        ("by parse outcome", "by_parse_outcome"),
    ):
        out.append(rate_table(title, m.get(key, {})))
    return out


def export_report(stats: StageStats) -> list[Any]:
    """Where the data set went, and how big it is."""
    m = stats.metrics
    if "dataset" not in m:
        return []
    lines = [
        f"[green]exported[/green] {m['sft_rows']} examples and {m['pairs_rows']} pairs to "
        f"{m['dataset']} (card: {m['dataset']}/README.md)"
    ]
    config = m.get("config", {}).get("export", {})
    if config.get("push_to_hub"):
        lines.append(f"pushed to https://huggingface.co/datasets/{config['push_to_hub']}")
    return [Text.from_markup(line) for line in lines]
