"""What ``make replicate`` runs: ``python -m replication.replicate {check,list,run,curve,summary}``.

``pending`` names the experiments still to run or redraw; ``progress`` shows where each stands (epoch, best
validation NLL, look-ahead left, time so far) from its run folder.

Each step executes a thin papermill notebook from ``notebooks/`` into ``RESULTS/notebooks/`` (atomically), its kernel
working in that folder and its paths relative to it; a saved experiment or curve notebook is set to only read
(``train = False``, ``compute = False``), so run again where it lies it finds its result or stops with one line.
A failing experiment is recorded in ``RESULTS/failed/NAME.txt`` and does not stop the others;
``summary`` reports failures and exits non-zero when there are any.  Each experiment and the summary
hold a lock in ``RESULTS/.locks/`` while they work, so two concurrent ``make replicate`` into one folder
never do the same work twice; a step with nothing new to do writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from . import curve, document, report, summary
from .cli import exit_status, nonblank_path
from .engine import lock_file, run_guarded, unavailable
from .errors import ReplicationError
from .experiments import ROOT, Experiment, check_plan, data_unavailable, finished_metrics, is_complete, load_plan
from .files import atomic_path, locked
from .progress import standing, standing_table
from .tables import AGREES_WITHIN, TABLES, compare_table, to_markdown

NOTEBOOKS = ROOT / "notebooks"


TRAIN_OFF = "train = False  # set after execution: run again where it lies, it reads its finished result, never trains"
COMPUTE_OFF = "compute = False  # set after execution: run again where it lies, it reads the saved curve, never computes"
Edit = Callable[[dict], None]  # a change to an executed notebook's JSON, made before it is saved


def relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``, the executed notebook's folder and its kernel's working directory: no machine's
    path is injected, and the saved notebook run again where it lies finds the same folders.

    >>> relative(Path("results"), Path("results") / "notebooks"), relative(Path("runs"), Path("results") / "notebooks")
    ('..', '../../runs')
    """
    return os.path.relpath(path.resolve(), folder.resolve())


def execute(notebook: str, output: Path, parameters: dict, edit: Edit | None = None) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (replaced in one rename when it succeeds), its
    kernel working in ``output``'s folder; ``edit`` then changes the executed notebook (a failed one too)."""
    import papermill

    with atomic_path(output, suffix=".tmp.ipynb") as tmp:
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS / notebook), str(tmp), parameters=parameters, progress_bar=False, log_output=True,
                cwd=str(output.parent), kernel_name="python3",
                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not its warning about TCP on the local machine
            )  # fmt: skip
        except Exception:
            if tmp.is_file():  # the executed notebook, complete up to the failing cell: the record of the failure
                finish_notebook(tmp, notebook, output, edit)
                os.replace(tmp, output)
            raise
        finish_notebook(tmp, notebook, output, edit)


def finish_notebook(executed: Path, notebook: str, output: Path, edit: Edit | None) -> None:
    """Papermill records absolute input and output paths: keep them relative to the project instead; then ``edit``."""
    content = json.loads(executed.read_text())
    record = content.get("metadata", {}).get("papermill", {})
    record["input_path"] = f"notebooks/{notebook}"
    record["output_path"] = os.path.relpath(output.resolve(), ROOT)
    keep_inside_project(content, output.parent)
    if edit is not None:
        edit(content)
    executed.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")


def source_lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: its lines, each with its newline but the last."""
    return text.splitlines(keepends=True)


def set_title(content: dict, text: str) -> None:
    """Make ``text`` the notebook's first markdown cell (its title).

    >>> notebook = {"cells": [{"cell_type": "markdown", "source": ["# Any experiment"]}]}
    >>> set_title(notebook, "# mnist_1x500_4masks\\n\\nFour masks.")
    >>> notebook["cells"][0]["source"]
    ['# mnist_1x500_4masks\\n', '\\n', 'Four masks.']
    """
    cell = next((c for c in content["cells"] if c["cell_type"] == "markdown"), None)
    if cell is None:
        raise ReplicationError("the executed notebook has no markdown cell to hold its title")
    cell["source"] = source_lines(text)


def injected_cell(content: dict) -> dict:
    """The cell of parameters papermill injected into an executed notebook."""
    cells = [c for c in content["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ReplicationError("the executed notebook has no injected-parameters cell (papermill writes one)")
    return cells[0]


def keep_inside_project(content: dict, folder: Path, root: Path = ROOT) -> None:
    """A notebook saved in the project names no folder outside it: a ``runs_dir`` that leads out of ``root`` (the
    checkpoints kept elsewhere on the machine) is saved as the project's own ``runs`` folder, with a comment.

    >>> notebook = {"metadata": {"papermill": {"parameters": {"runs_dir": "../../../../home/me/runs"}}},
    ...             "cells": [{"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
    ...                        "source": ['name = "x"\\n', 'runs_dir = "../../../../home/me/runs"\\n']}]}
    >>> keep_inside_project(notebook, ROOT / "results" / "notebooks")
    >>> notebook["metadata"]["papermill"]["parameters"]["runs_dir"]
    '../../runs'
    >>> notebook["cells"][0]["source"][1]
    'runs_dir = "../../runs"  # its checkpoints were kept outside the project\\n'
    """
    folder, root = folder.resolve(), root.resolve()
    parameters = content.get("metadata", {}).get("papermill", {}).get("parameters", {})
    given = parameters.get("runs_dir")
    if not folder.is_relative_to(root) or not isinstance(given, str) or (folder / given).resolve().is_relative_to(root):
        return
    parameters["runs_dir"] = inside = relative(root / "runs", folder)
    cell = injected_cell(content)
    lines = source_lines("".join(cell["source"]))
    line = f"runs_dir = {json.dumps(inside)}  # its checkpoints were kept outside the project\n"
    cell["source"] = [line if text.startswith("runs_dir = ") else text for text in lines]


def set_after_execution(content: dict, line: str) -> None:
    """Append ``line`` to the cell of parameters papermill injected: what the saved notebook, run again, uses.

    >>> notebook = {"cells": [{"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "a = 1\\n"}]}
    >>> set_after_execution(notebook, "train = False  # why")
    >>> notebook["cells"][0]["source"]
    ['a = 1\\n', 'train = False  # why']
    """
    cell = injected_cell(content)
    source = "".join(cell["source"])
    cell["source"] = source_lines(source + ("" if source.endswith("\n") or not source else "\n") + line)


def as_document(experiment: Experiment, profile: str, content: dict) -> None:
    """An executed experiment notebook as a document of its own: titled with its name, and reading only when run
    again where it lies."""
    set_title(content, document.title(experiment, profile))
    set_after_execution(content, TRAIN_OFF)


def template_digest(notebook: str) -> str:
    """Digest of a notebook template: an executed notebook drawn from an older template is redrawn."""
    return hashlib.sha256((NOTEBOOKS / notebook).read_bytes()).hexdigest()[:16]


def drawn_from_current_template(output: Path, notebook: str) -> bool:
    """Whether ``output`` exists and was executed from the current ``notebooks/<notebook>``."""
    if not output.is_file():
        return False
    try:
        parameters = json.loads(output.read_text())["metadata"]["papermill"]["parameters"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return parameters.get("template") == template_digest(notebook)


def notebook_current(results: Path, step: str, template: str) -> bool:
    return drawn_from_current_template(results / "notebooks" / f"{step}.ipynb", template)


def experiment_done(experiment: Experiment, results: Path) -> bool:
    """Finished with the same recipe, and its executed notebook drawn from today's template."""
    return is_complete(experiment, results) and notebook_current(results, experiment.name, "experiment.ipynb")


def pending(profile: str, results: Path, names: list[str], long_runs: bool = False) -> list[Experiment]:
    """The experiments of the request that ``make replicate`` has to run or redraw (one process decides for all); a
    long run only when ``names`` names it (or ``long_runs``)."""
    chosen = [e for e in check_plan(profile, names, check_data=False) if not experiment_done(e, results) and not unavailable(e)]
    return [e for e in chosen if long_runs or e.name in names or not e.long_run]


def long_runs_left(profile: str, results: Path, names: list[str]) -> list[Experiment]:
    """The unfinished long runs that ``pending`` leaves out of this request."""
    return [e for e in pending(profile, results, names, long_runs=True) if e.long_run and e.name not in names]


def run_progress(profile: str, results: Path, runs: Path, names: list[str]) -> int:
    """Print where every pending experiment stands (its run folder is only read)."""
    rows = [standing(e, runs, profile) for e in pending(profile, results, names, long_runs=True)]
    if not rows:
        print(f"nothing pending in profile {profile} (results in {results})")
        return 0
    print(f"Pending experiments of profile {profile}, read from {runs}/{profile}/ (train hours: the time its "
          "epochs ran, every resumption included, time stopped with kill -STOP left out)\n")  # fmt: skip
    print(to_markdown(standing_table(rows)))
    return 0


def run_one(name: str, profile: str, results: Path, runs: Path) -> int:
    """Run experiment ``name`` as a notebook unless finished (a finished run's notebook is only redrawn)."""
    experiment, folder = load_plan().experiment(name, profile), results / "notebooks"
    params = {"name": name, "profile": profile, "results_dir": relative(results, folder),
              "runs_dir": relative(runs, folder), "template": template_digest("experiment.ipynb")}  # fmt: skip
    edit = partial(as_document, experiment, profile)
    work = partial(execute, "experiment.ipynb", folder / f"{name}.ipynb", params, edit)
    run_guarded(name, results, work, partial(experiment_done, experiment, results), unavailable(experiment))
    return 0


def run_curve(profile: str, results: Path, runs: Path) -> int:
    """Draw the masks curve unless it is current."""
    chosen, finished = curve.curve_models(load_plan(), profile, results)
    if not finished:
        print(f"[skip] masks curve: none of {', '.join(e.name for e in chosen)} has finished")
        return 0
    folder = results / "notebooks"
    params = {"profile": profile, "results_dir": relative(results, folder), "runs_dir": relative(runs, folder),
              "template": template_digest("masks_curve.ipynb")}  # fmt: skip
    edit = partial(set_after_execution, line=COMPUTE_OFF)
    work = partial(execute, "masks_curve.ipynb", folder / "masks_curve.ipynb", params, edit)
    run_guarded("masks_curve", results, work, lambda: notebook_current(results, "masks_curve", "masks_curve.ipynb")
                and curve.is_current(profile, results))  # fmt: skip
    return 0


def run_summary(profile: str, results: Path) -> int:
    """Write the tables and READMEs unless nothing they are drawn from has changed; print the tables. An unreadable
    finished record stops it with the record's path (a seed is never silently left out of the tables)."""
    for experiment in load_plan().for_profile(profile):
        finished_metrics(experiment, results)
    with locked(lock_file(results, "summary"), f"the summary of {results}", wait=True):
        notebook = results / "notebooks" / "summary.ipynb"
        if drawn_from_current_template(notebook, "summary.ipynb") and summary.readme_is_current(results, profile):
            print("[skip] summary: nothing new since it was written")
        else:
            folder = results / "notebooks"
            params = {"profile": profile, "results_dir": relative(results, folder), "template": template_digest("summary.ipynb")}
            execute("summary.ipynb", folder / "summary.ipynb", params)
        if results.resolve() in {(ROOT / committed).resolve() for committed in report.FOLDERS.values()}:
            report.write_readme(ROOT)  # the project's own results: never for smoke runs elsewhere
    for stem in TABLES:
        print(f"\n## {stem}\n\n{(results / f'{stem}.md').read_text()}")
    failures = sorted((results / "failed").glob("*.txt")) if (results / "failed").is_dir() else []
    for path in failures:
        print(f"[FAILED] {path.stem}: {path.read_text().strip()}", file=sys.stderr)
    if failures:
        print(
            f"{len(failures)} step(s) failed; rerun `make replicate` to retry them (finished ones are skipped)", file=sys.stderr
        )
    return 1 if failures else 0


def run_compare(profile: str, rerun: Path, reference: Path) -> int:
    """Print every row of a rerun against the reference results; non-zero when a row differs."""
    if not (rerun / "metrics").is_dir():
        raise ReplicationError(f"{rerun} holds no metrics/ folder; run `make replicate RESULTS={rerun}` first")
    table = compare_table(rerun, reference, profile)
    print(f"Test NLL of {rerun} against {reference} (profile {profile}); `agrees` = within {AGREES_WITHIN:g} "
          "standard errors of the difference\n")  # fmt: skip
    print(to_markdown(table))
    differs = int((table["verdict"] == "differs").sum())
    print(f"{differs} row(s) differ" if differs else "no row differs")
    return 1 if differs else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.replicate", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "list", "pending", "progress", "run", "curve", "summary", "compare"])
    parser.add_argument("name", nargs="?", help="experiment name (for run)")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated experiment names (check, list, pending, progress)")
    parser.add_argument("--results", type=nonblank_path, default=Path("results"))
    parser.add_argument("--runs", type=nonblank_path, default=Path("runs"))
    parser.add_argument("--against", type=nonblank_path, default=Path("results"), help="reference results folder (compare)")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n]

    def dispatch() -> int | None:
        if args.command == "check":
            experiments = [e for e in check_plan(args.profile, only) if not data_unavailable(e)]
            print(f"profile {args.profile}: {len(experiments)} experiment(s) with their data at hand: "
                  + ", ".join(e.name for e in experiments))  # fmt: skip
        elif args.command == "list":
            print("\n".join(e.name for e in check_plan(args.profile, only, check_data=False)))  # `check` did the data
        elif args.command == "pending":
            print("\n".join(e.name for e in pending(args.profile, args.results, only)))
            for e in long_runs_left(args.profile, args.results, only):
                where = "" if args.results == Path("results") else f" RESULTS={args.results}"
                print(f"[not started] {e.name}: a long run (days on CPU); start it with `make replicate "
                      f"PROFILE={args.profile}{where} ONLY={e.name}` (resumable)", file=sys.stderr)  # fmt: skip
        elif args.command == "progress":
            return run_progress(args.profile, args.results, args.runs, only)
        elif args.command == "run":
            if not args.name:
                raise ReplicationError("run needs an experiment name")
            return run_one(args.name, args.profile, args.results, args.runs)
        elif args.command == "curve":
            return run_curve(args.profile, args.results, args.runs)
        elif args.command == "compare":
            return run_compare(args.profile, args.results, args.against)
        else:
            return run_summary(args.profile, args.results)

    return exit_status(dispatch)


if __name__ == "__main__":
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    sys.exit(main())
