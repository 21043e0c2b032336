"""The dataset card's plots (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLOT_FILES = {
    "funnel": "funnel.png",
    "pass_rate": "pass_rate.png",
    "response_length": "response_length.png",
    "ratings": "ratings.png",
    "mutation_score": "mutation_score.png",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_funnel(funnel: Sequence[dict[str, Any]], path: Path) -> None:
    """Records written by each stage, in pipeline order (horizontal bars, first on top)."""
    plt = _pyplot()
    labels = [f"{row['stage']} ({row['unit_out']})" for row in funnel]
    values = [int(row["written"]) for row in funnel]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(labels) + 1.2))
    bars = ax.barh(labels[::-1], values[::-1], color="#4C72B0")
    ax.bar_label(bars, labels=[str(v) for v in values[::-1]], padding=3)
    ax.set_xlabel("records written")
    ax.set_title("Data funnel")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pass_rates(
    by_category: dict[str, dict[str, Any]], by_difficulty: dict[str, dict[str, Any]], path: Path
) -> None:
    """Pass rate and executability rate of the attempts, by category and by difficulty."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, (title, groups) in zip(
        axes, (("by category", by_category), ("by difficulty", by_difficulty)), strict=True
    ):
        names = list(groups)
        x = range(len(names))
        passed = [float(groups[n]["pass_rate"]) for n in names]
        runs = [float(groups[n]["executable_rate"]) for n in names]
        ax.bar([i - 0.2 for i in x], passed, width=0.4, label="pass rate", color="#55A868")
        ax.bar([i + 0.2 for i in x], runs, width=0.4, label="executable", color="#C4C4C4")
        ax.set_xticks(list(x), [f"{n}\n(n={groups[n]['attempts']})" for n in names])
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
    axes[0].set_ylabel("share of attempts")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_response_lengths(lengths: Sequence[int], path: Path) -> None:
    """Histogram of the assistant responses' lengths in characters."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(list(lengths) or [0], bins=min(40, max(5, len(lengths) // 5)), color="#8172B2")
    ax.set_xlabel("response length (characters)")
    ax.set_ylabel("examples")
    ax.set_title("Response lengths")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mutation_scores(histogram: dict[str, int], path: Path) -> None:
    """How many passing answers' tests killed each share of their solution's mutants."""
    plt = _pyplot()
    labels = list(histogram)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([f"{float(k):.1f}-{float(k) + 0.1:.1f}" for k in labels], list(histogram.values()),
           color="#55A868")
    ax.set_xlabel("mutation score (share of mutants the tests killed)")
    ax.set_ylabel("passing answers")
    ax.set_title("Test strength")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ratings(rating_counts: dict[str, dict[str, int]], path: Path) -> None:
    """How many judged answers got each rating, one panel per coding preference."""
    plt = _pyplot()
    names = list(rating_counts) or ["(none)"]
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names) + 0.6, 3.2), sharey=True)
    axes = axes if len(names) > 1 else [axes]
    for ax, name in zip(axes, names, strict=True):
        counts = rating_counts.get(name, {})
        labels = sorted(counts, key=float)
        ax.bar(labels, [counts[k] for k in labels], color="#DD8452")
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("rating")
    axes[0].set_ylabel("answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_all(summary: dict[str, Any], lengths: Sequence[int], folder: Path) -> list[Path]:
    """Draw every plot of the card into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / file for name, file in PLOT_FILES.items()}
    plot_funnel(summary["funnel"], paths["funnel"])
    execution = summary.get("execution", {})
    plot_pass_rates(
        execution.get("by_category", {}), execution.get("by_difficulty", {}), paths["pass_rate"]
    )
    plot_response_lengths(lengths, paths["response_length"])
    strength = summary.get("strength") or {}
    if strength.get("checked"):
        plot_mutation_scores(strength["mutation_score_histogram"], paths["mutation_score"])
    else:
        del paths["mutation_score"]
    judge = summary.get("judge")
    if judge:
        plot_ratings(judge["rating_counts"], paths["ratings"])
    else:
        del paths["ratings"]
    return list(paths.values())
