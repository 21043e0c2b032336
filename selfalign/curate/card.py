"""The dataset card: ``README.md`` with Hugging Face YAML metadata, rendered from the summary.

Every number in the card comes from the summary that ``export`` also writes as
``stats.json``, so the two always agree.
"""

from __future__ import annotations

from typing import Any

from selfalign.curate.plots import PLOT_FILES


def size_category(rows: int) -> str:
    """The Hub's size bucket for a number of rows."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ]
    for bound, name in bounds:
        if rows < bound:
            return name
    return "10M<n<100M"


def percent(value: float) -> str:
    """How the card writes a rate (0.6667 -> '66.7%')."""
    return f"{100 * float(value):.1f}%"


def metadata(summary: dict[str, Any], data_files: dict[str, str]) -> dict[str, Any]:
    """The card's YAML header: license, languages, task categories, size, configs."""
    return {
        "license": summary["license"],
        "language": ["en", "code"],
        "task_categories": ["text-generation"],
        "tags": ["code", "synthetic", "self-alignment", "selfcodealign", "dpo"],
        "size_categories": [size_category(int(summary["sft_rows"]))],
        "pretty_name": summary["pretty_name"],
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": "train", "path": path}],
                **({"default": True} if name == "sft" else {}),
            }
            for name, path in data_files.items()
        ],
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rate_rows(groups: dict[str, dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            name,
            g["attempts"],
            g["passed"],
            percent(g["pass_rate"]),
            percent(g["executable_rate"]),
        ]
        for name, g in groups.items()
    ]


def _strength_section(summary: dict[str, Any], plots: bool) -> str:
    """Passed -> strong tests -> kept, the reasons tests were weak, the mutation scores."""
    strength = summary.get("strength") or {}
    if not strength.get("checked"):
        return (
            "## Verification\n\nThe strength of the tests was not checked in this run "
            "(`[strength] enabled = false`): passing answers were kept on the static rules.\n"
        )
    lines = [
        "## Verification\n",
        "A pass counts only when its tests could have failed (docs/verification.md): after a "
        "program passed, its tests ran again against a null implementation of the solution, "
        "with changed expected values, and against mutants of the solution; static checks "
        "looked for vacuous tests and for solutions that game their tests.\n",
        _table(
            ["answers", "count"],
            [
                ["passed their own tests", strength["passed"]],
                ["checked", strength["checked"]],
                ["strong tests", strength["strong"]],
                ["kept in the data set (one per task)", summary["sft_rows"]],
            ],
        )
        + "\n",
    ]
    weak = strength.get("weak_by_reason") or {}
    if weak:
        lines.append(
            _table(["why the tests were weak", "answers"], [[r, n] for r, n in weak.items()])
            + "\n"
        )
    mean = strength.get("mean_mutation_score")
    if mean is not None:
        lines.append(f"Mean mutation score of the checked answers: {mean:.2f}.\n")
    if plots:
        lines.append(f"![mutation scores](plots/{PLOT_FILES['mutation_score']})\n")
    return "\n".join(lines)


def _judge_section(summary: dict[str, Any], plots: bool) -> str:
    """The judge's ratings: how they spread per preference, how often they agree with
    execution, how many judgments were rejected."""
    judge = summary["judge"]
    counts = judge["rating_counts"]
    ratings = sorted({r for c in counts.values() for r in c}, key=float)
    rows = [[p, *[c.get(r, 0) for r in ratings]] for p, c in counts.items()]
    agreement = judge["agreement"]
    pairs = agreement["agree"] + agreement["disagree"] + agreement["tie"]
    rate = agreement["rate"]
    models = ", ".join(f"`{m}`" for m in judge["models"]) or "none"
    lines = [
        "## Judge ratings\n",
        f"Judge: {models}, on {judge['tasks']} tasks of this data set (one call per task and "
        "preference, answers in a recorded shuffled order). A small judge is weak: its "
        "ratings are a signal to check, not a measure.\n",
        _table(["preference", *[f"rated {r}" for r in ratings]], rows or [["none"]]) + "\n",
        f"Judge and execution agree on {agreement['agree']} of {pairs} (passing, failing) answer "
        f"pairs ({percent(rate) if rate is not None else 'n/a'}: the judge rates the passing "
        f"answer higher); it prefers the failing one in {agreement['disagree']} and rates "
        f"both the same in {agreement['tie']}.\n",
    ]
    rejected = judge["rejected_judgments"]
    if rejected:
        lines.append(
            "Judgments rejected after a retry, by reason: "
            + ", ".join(f"{r} {n}" for r, n in rejected.items())
            + ".\n"
        )
    if plots:
        lines.append(f"![ratings](plots/{PLOT_FILES['ratings']})\n")
    return "\n".join(lines)


def _answer_note(summary: dict[str, Any]) -> str:
    """What the assistant turn holds, counted in the data (two-step answers hold no tests)."""
    rows = int(summary["sft_rows"])
    with_tests = int(summary.get("sft_rows_with_tests_in_answer", 0))
    if rows and with_tests == rows:
        held = "the model's whole answer, **tests included** (as SelfCodeAlign trains on it)"
    elif with_tests == 0:
        held = (
            "the model's answer **without its tests** (answers written in two steps keep the "
            "tests apart)"
        )
    else:
        held = f"the model's answer; {with_tests} of {rows} answers include their tests"
    return (
        f"The assistant turn is {held}; every example's tests are in the `tests` column. "
        "Pairs: `preference_source` says why `chosen` beats `rejected`: `execution` (its "
        "tests passed, the other's failed or timed out), `judge` (the judge rated it higher) "
        "or `both`; both verdicts are in `chosen_verdict` / `rejected_verdict`, both sides' "
        "judge ratings in `chosen_ratings` / `rejected_ratings`.\n"
    )


def render_card(summary: dict[str, Any], data_files: dict[str, str], plots: bool = True) -> str:
    """The whole ``README.md``: YAML metadata, then how the data was made, in numbers."""
    import yaml

    meta = yaml.safe_dump(metadata(summary, data_files), sort_keys=False, allow_unicode=True)
    gen = summary["generation"]
    ex = summary["execution"]
    sel = summary["selection"]
    lengths = summary["response_chars"]
    parts: list[str] = [f"---\n{meta}---\n", f"# {summary['pretty_name']}\n"]
    parts.append(
        "Instruction data for code made by **self-alignment** "
        "(SelfCodeAlign / StarCoder2-Instruct) with "
        "`selfalign`: a model listed the concepts of real seed "
        "functions, wrote new tasks from them, answered each task several times with "
        "its own tests, and only answers whose tests passed in a sandbox were kept.\n"
    )
    parts.append("## Configs\n")
    configs = [
        ["sft", summary["sft_rows"], "TRL conversational `messages` (user, assistant)"],
        ["pairs", summary["pairs_rows"], "TRL preference `prompt` / `chosen` / `rejected`"],
    ]
    if summary.get("judge") is not None:
        configs.append(
            [
                "ratings",
                summary["ratings_rows"],
                "UltraFeedback: `instruction`, `completions` with per-preference ratings",
            ]
        )
    parts.append(_table(["config", "rows", "format"], configs) + "\n")
    parts.append(_answer_note(summary))
    parts.append("## How it was made\n")
    parts.append(
        _table(
            ["setting", "value"],
            [
                ["model", f"`{gen['model']}`"],
                ["backend", f"`{gen['backend']}`"],
                ["seeds source", f"`{gen['seeds_source']}`"],
                ["sandbox", f"`{gen['sandbox']}`"],
                ["answer picked per task", f"`{gen['pick']}`"],
            ],
        )
        + "\n"
    )
    parts.append("## Funnel\n")
    parts.append(
        "Each row counts its stage's own units (the seeds stage reads files but counts the "
        "functions found in them).\n"
    )
    parts.append(
        _table(
            ["stage", "input", "read", "dropped", "output", "written"],
            [
                [r["stage"], r["unit_in"], r["read"], r["dropped"], r["unit_out"], r["written"]]
                for r in summary["funnel"]
            ],
        )
        + "\n"
    )
    if plots:
        parts.append(f"![funnel](plots/{PLOT_FILES['funnel']})\n")
    parts.append("## Execution\n")
    parts.append(
        f"Attempts executed: {ex['attempts']}; passed: {ex['passed']} "
        f"(pass rate {percent(ex['pass_rate'])}); executable: {ex['executable']} "
        f"(executability rate {percent(ex['executable_rate'])}: the program ran without "
        "error up to its checks). Tasks with at least one passing answer: "
        f"{ex['tasks_with_pass']} of {ex['tasks']}.\n"
    )
    header = ["group", "attempts", "passed", "pass rate", "executable"]
    for title, key in (
        ("By category", "by_category"),
        ("By difficulty", "by_difficulty"),
        ("By parse outcome", "by_parse_outcome"),
    ):
        parts.append(f"### {title}\n")
        parts.append(_table(header, _rate_rows(ex.get(key, {}))) + "\n")
    if plots:
        parts.append(f"![pass rate](plots/{PLOT_FILES['pass_rate']})\n")
    parts.append(_strength_section(summary, plots))
    parts.append("## Selection, dedup and decontamination\n")
    parts.append(
        "Tasks removed, by reason (dedup: exact, then MinHash "
        f"{sel['minhash']['num_perm']} permutations, Jaccard {sel['minhash']['threshold']}, "
        f"word {sel['minhash']['ngram']}-grams; on instructions, responses and code):\n"
    )
    parts.append(
        _table(["reason", "tasks"], [[r, n] for r, n in sel["removed"].items()] or [["none", 0]])
        + "\n"
    )
    parts.append(
        f"Removed as duplicates: {sel['dedup_total']}. Removed as benchmark-contaminated "
        f"(HumanEval and {len(sel['benchmark_files'])} benchmark file(s)): "
        f"{sel['decontamination_total']} at selection; "
        f"{summary['decontamination_earlier']} in earlier stages.\n"
    )
    if summary.get("judge") is not None:
        parts.append(_judge_section(summary, plots))
    parts.append("## Responses\n")
    parts.append(
        f"Response length in characters: mean {lengths['mean']}, median {lengths['median']}, "
        f"max {lengths['max']}.\n"
    )
    if plots:
        parts.append(f"![response lengths](plots/{PLOT_FILES['response_length']})\n")
    parts.append("## Loading\n")
    parts.append(
        "```python\nfrom datasets import load_dataset\n\n"
        'sft = load_dataset("path/to/this/folder", "sft", split="train")\n'
        'pairs = load_dataset("path/to/this/folder", "pairs", split="train")\n```\n\n'
        "TRL's command line reads it as it is: `trl sft --dataset_name path/to/this/folder` "
        "(the `sft` config is the default) and `trl dpo --dataset_name path/to/this/folder "
        "--dataset_config pairs`.\n"
    )
    parts.append("## Configuration used\n")
    parts.append("```toml\n" + summary["config_toml"].rstrip() + "\n```\n")
    return "\n".join(parts)
