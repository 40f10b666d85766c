"""The written summary of a replication: every table, its figures and ``results/README.md``.

The summary is a pure function of its inputs (the profile's metrics, failures, masks curve, the plan and the code
that draws the tables); their digest is kept in ``results/README.md`` so that a rerun with nothing new writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from .document import samples_caption
from .experiments import finished_metrics, load_plan, metrics_path
from .figures import plot_histories, plot_trained_masks, plot_vs_paper
from .files import write_text
from .tables import TABLES, all_tables, save_table, to_markdown

DIGEST = re.compile(r"<!-- summary inputs: ([0-9a-f]{64}) -->")


def inputs_digest(results_dir: str | Path, profile: str) -> str:
    """SHA-256 over everything the summary is drawn from."""
    results_dir, digest = Path(results_dir), hashlib.sha256()
    package = resources.files(__package__)
    sources = [package.joinpath(name) for name in ("experiments.toml", "tables.py", "summary.py")]
    files = [metrics_path(results_dir, e.name) for e in load_plan().for_profile(profile)]
    files += sorted((results_dir / "failed").glob("*.txt")) + [results_dir / "masks_curve.json"]
    for item in sources + files:
        digest.update(str(getattr(item, "name", item)).encode())
        digest.update(item.read_bytes() if item.is_file() else b"<absent>")
    for folder in ("samples", "notebooks", "figures"):
        names = sorted(
            p.name for p in (results_dir / folder).glob("*") if p.name != "summary.ipynb" and not p.name.startswith(".")
        )  # written by this step
        digest.update(" ".join(names).encode())
    return digest.hexdigest()


def readme_is_current(results_dir: str | Path, profile: str) -> bool:
    """Whether ``results_dir/README.md`` was written from exactly the current inputs."""
    readme = Path(results_dir) / "README.md"
    found = DIGEST.search(readme.read_text()) if readme.is_file() else None
    return found is not None and found.group(1) == inputs_digest(results_dir, profile)


def write_summary(results_dir: str | Path, profile: str) -> dict[str, pd.DataFrame]:
    """Write every table, the figures and ``results_dir/README.md``; return the tables."""
    results_dir = Path(results_dir)
    tables = all_tables(results_dir, profile)
    for stem in TABLES:
        save_table(tables[stem], results_dir / stem)
    draw_figures(results_dir, profile, tables)
    text = results_readme(results_dir, profile, tables)
    write_text(results_dir / "README.md", text + f"\n<!-- summary inputs: {inputs_digest(results_dir, profile)} -->\n")
    return tables


VS_PAPER, CURVES = Path("figures") / "ours_vs_paper.png", Path("figures") / "mnist_curves.png"
TRAINED_MASKS = Path("figures") / "nll_vs_trained_masks.png"


def draw_figures(results_dir: Path, profile: str, tables: dict[str, pd.DataFrame]) -> None:
    """The lead figure (ours minus the paper, row by row) and the MNIST training curves."""
    rows = pd.concat([tables["nll_mnist"], tables["nll_uci"]], ignore_index=True)
    if not rows.empty and rows["difference"].notna().any():
        plot_vs_paper(rows, results_dir / VS_PAPER, f"Test NLL, ours minus the paper's ({profile} profile)")
    trained = tables["trained_masks"]
    if len(trained) > 1:
        plan = load_plan()
        curve = results_dir / "masks_curve.csv"
        first_n = pd.read_csv(curve) if curve.is_file() else None
        if first_n is not None:
            first_n = first_n[first_n["experiment"] == trained.loc[trained["masks K"].idxmax(), "experiment"]]
        nade = plan.paper["orderless_nade"]
        plot_trained_masks(
            trained, first_n, plan.reference(plan.curve["trained_with_k_paper"]),
            (nade["orderings"], nade["one_hidden_layer"], plan.paper["mnist_context"]["NADE"]), results_dir / TRAINED_MASKS,
        )  # fmt: skip
    runs = [m for e in load_plan().for_profile(profile) if e.family == "mnist" and (m := finished_metrics(e, results_dir))]
    if runs:
        plot_histories(
            runs,
            results_dir / CURVES,
            f"Binarized MNIST: validation NLL per epoch, each run on its own validation ensemble; a dot marks the best epoch "
            f"({profile} profile)",
        )


TRAINED_MASKS_TEXT = [
    "Each model is trained with K masks (ordering and connectivity resampled, same seed) and tested on its",
    "K-mask ensemble, beside one 32-mask model's first-n ensembles, the paper's 500-unit 1-mask point and",
    "order-agnostic NADE (one model averaged over n orderings, from the official NADE code).",
]
VARIATIONS_TEXT = [
    "Same seed, one change of the row it varies (`what differs` lists the recipe fields it sets). Difference = variant",
    "minus base test NLL (negative: the variant is better), with the paired standard error over the same test examples",
    "and z = difference / paired stderr.",
]
OFFICIAL_TEXT = [
    "Each known difference from the official code (mgermain/MADE) and its measured effect on a test NLL, from the",
    "one-change runs above (± paired stderr), or why it was not measured.",
]


def notebook_link(results_dir: Path, name: str, label: str | None = None) -> str:
    """A Markdown link to the executed notebook of ``name``, or the plain name when there is none."""
    notebook = results_dir / "notebooks" / f"{name}.ipynb"
    return f"[{label or name}](notebooks/{notebook.name})" if notebook.is_file() else (label or name)


def linked(frame: pd.DataFrame, column: str, results_dir: Path) -> pd.DataFrame:
    """``frame`` with each name of ``column`` linked to its executed notebook (for the README; the files keep names)."""
    if frame.empty:
        return frame
    return frame.assign(**{column: [notebook_link(results_dir, name) for name in frame[column]]})


def notebook_index(results_dir: Path, profile: str, finished: set[str]) -> list[str]:
    """The executed notebooks, grouped and ordered as the tables are: each row's notebook, then its other seeds'."""
    plan, lines = load_plan(), ["## Executed notebooks", ""]
    for title, family in (("Binarized MNIST", "mnist"), ("UCI data sets", "uci")):
        entries = []
        for row in (e for e in plan.rows(profile) if e.family == family):
            runs = [run.name for run in plan.seed_runs(row.name, profile) if run.name in finished]
            if runs:
                seeds = [notebook_link(results_dir, run, run.rsplit("-", 1)[1]) for run in runs[1:]]
                entries.append(f"- {notebook_link(results_dir, runs[0])}" + (f" (also {', '.join(seeds)})" if seeds else ""))
        if entries:
            lines += [f"**{title}**", "", *entries, ""]
    others = [p.stem for p in sorted((results_dir / "notebooks").glob("[!.]*.ipynb")) if p.stem in ("masks_curve", "summary")]
    if others:
        lines += ["**Curves and summary**", "", *[f"- {notebook_link(results_dir, name)}" for name in others], ""]
    return lines if len(lines) > 2 else []


def results_readme(results_dir: Path, profile: str, tables: dict[str, pd.DataFrame]) -> str:
    plan = load_plan()
    compute = tables["cost"]["train min"].sum() if not tables["cost"].empty else 0.0
    lines = [
        "# Results",
        "",
        f"Generated by `make replicate PROFILE={profile}` ({plan.profiles[profile]['description']}).",
        "All NLLs are on the **test split**, in nats, with standard errors (std / sqrt(N)); K-mask models are",
        "evaluated as ensembles (log of the mean of the masks' probabilities). With several seeds, `test NLL` is their",
        "mean and `sd over seeds` their spread; `stderr` is one run's standard error over test examples.",
        "",
        "Verdict: `better` (more than 1 nat below the paper), `reproduced` (within 1 nat), `gap` (more than 1 nat above), judged",
        "only against a paper model of the same width (1x500 rows against the paper's 500-unit figure, quoted second-hand);",
        "a narrower CPU stand-in says `reference only` and shows the paper's number for context.",
        "",
        f"Measured cost: {compute:.0f} min of training in total over the {len(tables['cost'])} finished experiments (the"
        " cost table gives each run's time and device).",
        "",
        *([f"![ours vs the paper]({VS_PAPER.as_posix()})", ""] if (results_dir / VS_PAPER).is_file() else []),
        "## Binarized MNIST",
        "",
        to_markdown(linked(tables["nll_mnist"], "experiment", results_dir)),
        *([f"![MNIST training curves]({CURVES.as_posix()})", ""] if (results_dir / CURVES).is_file() else []),
        "## UCI data sets",
        "",
        to_markdown(linked(tables["nll_uci"], "experiment", results_dir)),
        "## Do mask ensembles help? Each K-mask model against the same network trained with one mask",
        "",
        "The paper's claim: training with K masks and testing the K-mask ensemble beats one mask. Gain = twin test",
        "NLL - ensemble test NLL (positive: the ensemble is better); the twin has the same recipe except the masks.",
        "`paired stderr` is the standard error of the per-example differences on the same test examples. The paper's",
        "gain is shown only where the paper has both models at this width.",
        *(
            ["A blank `paired stderr`: the per-example test NLLs of one of the pair are not in the results."]
            if not tables["ensemble_gain"].empty and tables["ensemble_gain"]["paired stderr"].isna().any()
            else []
        ),
        "",
        to_markdown(linked(tables["ensemble_gain"], "K-mask experiment", results_dir)),
    ]
    if (results_dir / "figures" / "nll_vs_masks.png").is_file():
        lines += ["## NLL vs number of masks", "", "![NLL vs number of masks](figures/nll_vs_masks.png)", ""]
    figure = [f"![NLL vs trained masks]({TRAINED_MASKS.as_posix()})", ""] if (results_dir / TRAINED_MASKS).is_file() else []
    for key, title, intro, after in (
        ("trained_masks", "The paper's 500-unit experiment: models trained with K masks", TRAINED_MASKS_TEXT, figure),
        ("variations", "One change at a time: each variant against the row it varies", VARIATIONS_TEXT, []),
        ("official_trainer", "What each difference from the official trainer costs", OFFICIAL_TEXT, []),
    ):
        if not tables[key].empty:
            lines += [f"## {title}", "", *intro, "", to_markdown(tables[key]), *after]
    runs = plan.for_profile(profile)
    records = {e.name: m for e in runs if (m := finished_metrics(e, results_dir))}  # a stale run's pictures are not shown
    finished = set(records)
    samples = sorted(p for p in (results_dir / "samples").glob("[!.]*.png") if p.stem in finished)
    if samples:
        lines += ["## Samples (exact ancestral samples, 10x10 grids)", ""]
        lines += [f"{samples_caption(records[p.stem])}\n\n![{p.stem}](samples/{p.name})\n" for p in samples]
    completed = [m for m in records.values() if "completions" in m]
    if completed:
        lines += [
            "## Completions: the bottom half of test digits given the top half",
            "",
            "A model whose ordering puts the top half of the image first (the raster-ordered runs) can sample the bottom",
            "half exactly from p(bottom | top). Each figure: one test digit per class, what the model is given, and 5",
            "draws. Beside it, the conditional NLL of the true bottom halves over the whole test split (nats, ± stderr).",
            "",
        ]
        for m in completed:
            c = m.completions
            lines += [f"**{m.name}**: -log p(bottom | top) = {c.nll:.2f} ± {c.stderr:.2f} nats (n = {c.n})", ""]
            lines += [f"![completions of {m.name}]({c.figure})", ""]
    commands = plan.profiles[profile].get("commands", [])
    if commands:
        lines += ["## How to run this profile", ""] + [f"- {c}" for c in commands] + [""]
    differences = plan.profiles[profile].get("differences", [])
    if differences:
        lines += ["## What still differs from the official code", ""] + [f"- {d}" for d in differences] + [""]
    lines += ["## Cost", "", to_markdown(linked(tables["cost"], "experiment", results_dir)),
              "`train min`: the training epochs, each with its validation pass, summed over every resumption; `eval s`: "
              "the final evaluation of the validation and test splits.", ""]  # fmt: skip
    lines += notebook_index(results_dir, profile, finished)
    return "\n".join(lines)
