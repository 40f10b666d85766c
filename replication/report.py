"""The project README as a replication report: every row of the paper beside ours, and every number of its findings
drawn from the results, never typed.

``README.md`` is rendered from ``docs/README.md.j2`` (Jinja2) with :class:`Facts`, which reads the committed tables of
``results/`` (cpu profile) and ``results/paper/`` (paper profile). A number the template asks for that the results do
not hold stops the rendering with a one-line error, so the README cannot report a run that is not there.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import jinja2
import pandas as pd

from .errors import ReplicationError
from .experiments import UNAVAILABLE, finished_metrics, load_plan, replicate_command
from .files import write_text
from .tables import all_tables, paired_stderr, to_markdown

PAPER_GAIN = "paper's gain at this width"  # a column of the ensemble-gain table
TEMPLATE = Path("docs") / "README.md.j2"
FOLDERS = {"cpu": Path("results"), "paper": Path("results") / "paper"}  # each profile's committed results


def signed(value: float, stderr: float | None) -> str:
    """A signed difference, ± its paired standard error when there is one.

    >>> signed(-1.9012, 0.0551), signed(0.45, None)
    ('-1.90 ± 0.06', '+0.45')
    """
    return f"{value:+.2f}" + (f" ± {stderr:.2f}" if stderr is not None and pd.notna(stderr) else "")


def uncertainty_text(row: pd.Series) -> str:
    """The uncertainty of a table row: the sd over seeds where there are several, else one run's test stderr.

    >>> uncertainty_text(pd.Series({"seeds": 5, "sd over seeds": 0.0161, "stderr": 0.022}))
    '± 0.02 (sd, 5 seeds)'
    >>> uncertainty_text(pd.Series({"seeds": 1, "sd over seeds": None, "stderr": 0.2304}))
    '± 0.23 (test stderr)'
    """
    if row["seeds"] > 1:
        return f"± {row['sd over seeds']:.2f} (sd, {int(row['seeds'])} seeds)"
    return f"± {row['stderr']:.2f} (test stderr)"


class Facts:
    """Every number the report quotes, read from the committed tables of each profile (``root`` is the project)."""

    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)

    @cached_property
    def tables(self) -> dict[str, dict[str, pd.DataFrame]]:
        return {profile: all_tables(self.root / folder, profile) for profile, folder in FOLDERS.items()}

    def _find(self, table: str, column: str, name: str) -> pd.Series | None:
        """The row ``name`` (in ``column``) of ``table``, from whichever profile has it, or None."""
        for tables in self.tables.values():
            frame = tables[table]
            if not frame.empty and name in set(frame[column]):
                return frame.set_index(column).loc[name]
        return None

    def _row(self, table: str, column: str, name: str) -> pd.Series:
        """The row ``name`` (in ``column``) of ``table``; a row the results lack stops the report."""
        row = self._find(table, column, name)
        if row is None:
            raise ReplicationError(f"the report quotes {name!r} from the {table} table, which has no such row: run it first")
        return row

    def result(self, name: str) -> pd.Series:
        """The NLL-table row of a finished experiment (cpu or paper profile)."""
        row = next((r for t in ("nll_mnist", "nll_uci") if (r := self._find(t, "experiment", name)) is not None), None)
        if row is None:
            raise ReplicationError(f"the report quotes {name!r}, which is no experiment of the cpu or paper profile")
        if pd.isna(row["test NLL"]):
            raise ReplicationError(f"the report quotes {name!r}, which has not finished ({row['verdict']})")
        return row

    def seeds(self, name: str) -> int:
        return int(self.result(name)["seeds"])

    def gain(self, name: str) -> str:
        """Ensemble gain over the 1-mask twin (twin minus ensemble: + means the masks help), ± its paired stderr."""
        row = self._row("ensemble_gain", "K-mask experiment", name)
        return signed(row["gain (nats)"], row["paired stderr"])

    def paper_gain(self, name: str) -> str:
        """The paper's gain at the width of K-mask experiment ``name`` (its two rows' difference)."""
        row = self._row("ensemble_gain", "K-mask experiment", name)
        return f"{float(row[PAPER_GAIN]):+.2f}"

    def change(self, variant: str) -> str:
        """What one change costs (variant minus the row it varies: + is worse), ± its paired stderr."""
        row = self._row("variations", "variant", variant)
        return signed(row["difference"], row["paired stderr"])

    def paired(self, a: str, b: str) -> str:
        """Run ``a``'s test NLL minus run ``b``'s (one run each, e.g. the same seed), ± the paired stderr."""
        plan = load_plan()
        folder = {e.name: profile for profile in FOLDERS for e in plan.for_profile(profile)}
        runs = [finished_metrics(plan.experiment(n, folder[n]), self.root / FOLDERS[folder[n]]) for n in (a, b)]
        if any(m is None for m in runs):
            raise ReplicationError(f"the report compares {a!r} with {b!r}, which have not both finished")
        se = paired_stderr(self.root / FOLDERS[folder[a]], a, b) if folder[a] == folder[b] else None
        return signed(runs[0].test_nll.nats - runs[1].test_nll.nats, se)

    def rows_with(self, verdict: str) -> str:
        """The paper rows whose verdict is ``verdict``, or "none"."""
        table = self.paper_table
        return ", ".join(table.loc[table["verdict"] == verdict, "paper row"]) or "none"

    def cost(self, name: str, column: str) -> str:
        """A column of the cost table (``epochs``, ``best epoch``, ``train min``, ``s/epoch``) for one run."""
        row = self._row("cost", "experiment", name)
        value = row[column]
        return f"{value:.0f}" if column in ("train min", "s/epoch") else str(value)

    def total(self, profile: str) -> str:
        """Finished runs and their summed training time in one profile."""
        cost = self.tables[profile]["cost"]
        return f"{len(cost)} runs, {cost['train min'].sum() / 60:.1f} hours of training"

    def stops(self) -> str:
        """How the finished runs of both profiles ended, from the cost tables."""
        stopped = pd.concat([tables["cost"]["stopped by"] for tables in self.tables.values()])
        early = int((stopped == "early stopping").sum())
        return f"{'all ' if early == len(stopped) else f'{early} of '}{len(stopped)} finished runs stopped by their look-ahead"

    def completion(self, name: str) -> str:
        """-log p(bottom half | top half) over the test split, ± stderr."""
        metrics = finished_metrics(load_plan().experiment(name, "cpu"), self.root / FOLDERS["cpu"])
        if metrics is None or metrics.completions is None:
            raise ReplicationError(f"the report quotes the completions of {name!r}, which has none")
        return f"{metrics.completions.nll:.2f} ± {metrics.completions.stderr:.2f}"

    # ---------------------------------------------------------------- the table of the paper's rows
    @cached_property
    def paper_table(self) -> pd.DataFrame:
        """Every row of the paper's two tables: its number, ours with its uncertainty, the difference and the verdict,
        or why there is no result and the command that produces it."""
        plan, rows = load_plan(), []
        for entry in plan.report:
            name, profile = entry["experiment"], entry["profile"]
            family = "nll_mnist" if entry["paper"].startswith("mnist.") else "nll_uci"
            frame = self.tables[profile][family].set_index("experiment")
            row, (label, paper_nll) = frame.loc[name], plan.reference(entry["paper"])
            notebook = (FOLDERS[profile] / "notebooks" / f"{name}.ipynb").as_posix()
            finished = pd.notna(row["test NLL"])
            out = {
                "paper row": label,
                "paper": paper_nll,
                "ours": row["test NLL"] if finished else None,
                "uncertainty": uncertainty_text(row) if finished else "",
                "masks": row["masks (train/test)"],
                "difference": round(row["difference"], 2) + 0.0 if finished else None,  # no "-0.00"
                "verdict": row["verdict"],
                "experiment": f"[{name}]({notebook})",
            }
            if not finished:
                out.update(self.why_not(entry, row["verdict"], profile))
            rows.append(out)
        return pd.DataFrame(rows)

    def why_not(self, entry: dict[str, str], status: str, profile: str) -> dict[str, str]:
        """The verdict and experiment cells of a paper row without a result: why, the command that produces it, and a
        finished CPU variant's number."""
        name = entry["experiment"]
        text = f"`{name}`: `{replicate_command(profile, self.root / FOLDERS[profile], name)}`"
        if status == UNAVAILABLE:
            text += " where its data can be downloaded (from the official MADE repository) or is in `$MADE_DATA_DIR`"
        variant = entry.get("cpu_variant")
        if variant:
            row = self.result(variant)
            text += f"; CPU variant `{variant}`: {row['test NLL']:.2f} {uncertainty_text(row)}, {row['verdict']}"
        return {"verdict": status, "experiment": text}

    def paper_table_markdown(self) -> str:
        return to_markdown(self.paper_table)

    def verdicts(self) -> str:
        """How the paper's rows fared, in one sentence of counts."""
        table = self.paper_table
        done = table[table["ours"].notna()]
        counts = done["verdict"].value_counts()
        parts = [f"{counts.get(v, 0)} {v}" for v in ("reproduced", "better", "gap")]
        return (
            f"Of the paper's {len(table)} rows, {len(done)} have a result: "
            + ", ".join(parts)
            + (f"; {len(table) - len(done)} have none yet (the table says why)." if len(done) < len(table) else ".")
        )


def render_readme(root: str | Path = ".") -> str:
    """``README.md`` as rendered from its template and the committed results."""
    root = Path(root)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root / TEMPLATE.parent), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(TEMPLATE.name).render(r=Facts(root))


def write_readme(root: str | Path = ".") -> bool:
    """Render ``README.md`` (written only when it changed); return whether it was written."""
    return write_text(Path(root) / "README.md", render_readme(root))
