#!/usr/bin/env python3
"""Execute every notebook of one validation tier and say which one failed, and where.

Seed 001 / ADR-031: the notebook-validator images execute notebooks headlessly; a notebook passes when every cell
runs without an error (the notebooks assert their own results, so a failed assertion is a failed validation).

    run_notebooks.py [--notebooks-dir DIR] [--output-dir DIR] [--engine auto|papermill|nbclient]
                     [--timeout SECONDS] [--kernel NAME] [-p NAME VALUE]... [--termination-log FILE] TIER

Notebooks: every DIR/TIER/*.ipynb (not recursive, names starting with "." skipped), in file-name order, each with
its own folder as working directory. Adding a notebook to a tier is dropping an .ipynb file into that folder.

Parameters: `-p NAME VALUE` is injected into every notebook the papermill way, as a cell tagged
`injected-parameters` right after the cell tagged `parameters`. VALUE is read as JSON when it parses (numbers,
true/false/null, lists, objects, quoted strings), otherwise taken as a plain string.

Engine: papermill (`papermill.execute_notebook`) when it is importable, which it is in every validator image;
otherwise nbclient, the executor papermill itself drives, with papermill's parameter injection done here.

Output: OUTPUT/TIER/<notebook>.ipynb, the executed notebook (on failure too, with the error in the failing cell),
and OUTPUT/TIER/summary.json (one entry per notebook: status, seconds, failing cell). stdout gets one line per
notebook, `PASSED <tier>/<name> (<s> s)` or, on failure,

    FAILED <tier>/<name> cell <index> "<first source line>": <ExceptionName>: <first line of its message>

where <index> is the 0-based position of the cell in the notebook as written (markdown cells count, injected
cells do not), the convention of nbformat and papermill; the full traceback goes to stderr.

Exit status: 0 when every notebook passed, 1 when any failed (all of them are still run), 2 on bad usage (unknown
tier, a tier without notebooks, an engine that is not installed, malformed arguments).

Termination log (--termination-log FILE, a Kubernetes container's /dev/termination-log): one line, the verdict that
pulumi-kubernetes shows when the validation Job fails. Written before each notebook as

    INCOMPLETE <tier>: stopped while running <tier>/<name> (<n> of <total> passed before it)

so a run killed by its deadline still names the notebook it was in (when `timeout`'s SIGTERM interrupts the kernel
first, the run ends normally with that cell FAILED), and replaced at the end by

    PASSED <tier>: <n> of <n> notebook(s) passed
    FAILED <tier>/<name> cell <index> "<first source line>": <ExceptionName>: <message> [(+<k> more failed: <names>)]
    ERROR run_notebooks.py: <usage error>

(the first failing notebook's line as on stdout; at most MAX_TERMINATION_BYTES, Kubernetes' per-container limit).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: papermill's tags: the cell holding a notebook's defaults, the cell it inserts after it, and its error markers.
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"

#: Kubernetes keeps at most 4096 bytes of a container's termination message (core/v1 Container,
#: terminationMessagePath); longer verdicts are cut here, on a character boundary, rather than by the kubelet.
MAX_TERMINATION_BYTES = 4096

TIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class UsageError(Exception):
    """Bad command line or environment: exit 2."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        prog="run_notebooks.py",
        description="Execute every notebook of one tier; exit 0 if all pass, 1 if any fails, 2 on bad usage.",
    )
    parser.add_argument("tier", help="tier folder name under --notebooks-dir, e.g. tier1")
    parser.add_argument(
        "--notebooks-dir",
        type=Path,
        default=here / "notebooks",
        help="folder holding one subfolder of notebooks per tier (default: notebooks/ next to this script)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("executed"),
        help="executed notebooks go to OUTPUT/TIER/ (default: ./executed)",
    )
    parser.add_argument("--engine", choices=["auto", "papermill", "nbclient"], default="auto")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default: 600)")
    parser.add_argument("--kernel", default=None, help="kernel name (default: each notebook's own kernelspec)")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="parameter injected into every notebook (VALUE is JSON when it parses, else a string)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=None,
        help="write a one-line verdict to FILE (a pod's /dev/termination-log); default: none",
    )
    return parser.parse_args(argv)


def write_termination_log(path: Path | None, line: str) -> None:
    """Replaces FILE's content with one line, cut to MAX_TERMINATION_BYTES; never fails the run."""
    if path is None:
        return
    data = (re.sub(r"[\r\n]+", " ", line).strip() + "\n").encode("utf-8")
    if len(data) > MAX_TERMINATION_BYTES:
        data = data[: MAX_TERMINATION_BYTES - 4].decode("utf-8", errors="ignore").encode("utf-8") + b"...\n"
    try:
        path.write_bytes(data)
    except OSError as e:
        print(f"run_notebooks.py: warning: cannot write termination log {path}: {e}", file=sys.stderr)


def parse_parameters(pairs: list[list[str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, raw in pairs:
        if not name.isidentifier():
            raise UsageError(f"-p {name}: a parameter name must be a Python identifier")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def find_notebooks(notebooks_dir: Path, tier: str) -> list[Path]:
    if not TIER_NAME.match(tier):
        raise UsageError(f"tier {tier!r} is not a folder name (letters, digits, '.', '_', '-')")
    tier_dir = notebooks_dir / tier
    if not tier_dir.is_dir():
        known = sorted(p.name for p in notebooks_dir.iterdir() if p.is_dir()) if notebooks_dir.is_dir() else []
        raise UsageError(f"no tier {tier!r} under {notebooks_dir} (tiers there: {', '.join(known) or 'none'})")
    notebooks = sorted(p for p in tier_dir.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))
    if not notebooks:
        raise UsageError(f"{tier_dir} holds no .ipynb notebooks: nothing to validate")
    return notebooks


def pick_engine(requested: str) -> str:
    try:
        import papermill  # noqa: F401

        has_papermill = True
    except ImportError:
        has_papermill = False
    if requested == "papermill" and not has_papermill:
        raise UsageError("--engine papermill: papermill is not installed")
    if requested == "nbclient" or (requested == "auto" and not has_papermill):
        try:
            import nbclient  # noqa: F401
        except ImportError as e:
            raise UsageError(f"neither papermill nor nbclient can be imported: {e}") from e
        return "nbclient"
    return "papermill"


# ------------------------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------------------------


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def inject_parameters(nb: Any, params: dict[str, Any]) -> None:
    """papermill's injection for Python kernels: a cell of assignments after the `parameters` cell (or first)."""
    import nbformat

    if not params:
        return
    lines = ["# Parameters"] + [f"{name} = {value!r}" for name, value in params.items()]
    cell = nbformat.v4.new_code_cell(source="\n".join(lines) + "\n")
    cell.metadata["tags"] = [INJECTED_TAG]
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in _tags(c)]
    at = next((i + 1 for i, c in enumerate(nb.cells) if PARAMETERS_TAG in _tags(c)), 0)
    nb.cells.insert(at, cell)


def run_nbclient(src: Path, dest: Path, params: dict[str, Any], timeout: int, kernel: str | None) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(src), as_version=4)
    inject_parameters(nb, params)
    started: list[int] = []
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel or nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(src.parent)}},
        on_cell_start=lambda cell, cell_index: started.append(cell_index),
    )
    try:
        client.execute()
    except Exception as e:  # CellExecutionError, CellTimeoutError, DeadKernelError, a kernel that never starts
        nbformat.write(nb, str(dest))
        raise _Failure(nb, started[-1] if started else None, e) from e
    nbformat.write(nb, str(dest))


def run_papermill(src: Path, dest: Path, params: dict[str, Any], timeout: int, kernel: str | None) -> None:
    import nbformat
    import papermill

    try:
        papermill.execute_notebook(
            str(src),
            str(dest),
            parameters=params or None,
            kernel_name=kernel,
            cwd=str(src.parent),
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
        )
    except Exception as e:
        executed = nbformat.read(str(dest), as_version=4) if dest.exists() else None
        running = None
        if executed is not None:
            for i, cell in enumerate(executed.cells):
                if cell.get("metadata", {}).get("papermill", {}).get("status") in ("running", "failed"):
                    running = i
                    break
        raise _Failure(executed, running, e) from e


class _Failure(Exception):
    """A notebook that did not run to the end: the executed notebook (if any), the cell running when it stopped."""

    def __init__(self, nb: Any, running_index: int | None, cause: BaseException):
        super().__init__(str(cause))
        self.nb = nb
        self.running_index = running_index
        self.cause = cause


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 120 else line[:117] + "..."
    return ""


def locate_failure(failure: _Failure) -> dict[str, Any]:
    """Finds the failing cell in the executed notebook, numbered as in the notebook as written."""
    info: dict[str, Any] = {"cell_index": None, "first_line": "", "ename": type(failure.cause).__name__, "evalue": ""}
    info["evalue"] = first_line(ANSI.sub("", str(failure.cause)))
    nb = failure.nb
    if nb is None:
        return info
    written_index = -1
    chosen = None
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if INJECTED_TAG in tags or PAPERMILL_ERROR_TAG in tags:
            continue
        written_index += 1
        errors = [
            o
            for o in cell.get("outputs", [])
            if o.get("output_type") == "error" and not (o.get("ename") == "SystemExit" and o.get("evalue") in ("", "0"))
        ]
        if errors:
            info.update(ename=errors[0].get("ename", ""), evalue=first_line(ANSI.sub("", errors[0].get("evalue", ""))))
            chosen = (written_index, cell)
            break
        if failure.running_index == i and chosen is None:
            chosen = (written_index, cell)
    if chosen is not None:
        info["cell_index"] = chosen[0]
        info["first_line"] = first_line(chosen[1].get("source", ""))
    return info


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage; it exits 2 on errors, 0 for --help
        return int(e.code or 0)
    try:
        params = parse_parameters(args.parameter)
        notebooks = find_notebooks(args.notebooks_dir, args.tier)
        engine = pick_engine(args.engine)
        if args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        out_dir = args.output_dir / args.tier
        out_dir.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as e:
        print(f"run_notebooks.py: error: {e}", file=sys.stderr)
        write_termination_log(args.termination_log, f"ERROR run_notebooks.py: {e}")
        return EXIT_USAGE

    run = run_papermill if engine == "papermill" else run_nbclient
    print(f"{args.tier}: {len(notebooks)} notebook(s) with {engine}, output in {out_dir}", flush=True)
    results = []
    verdicts: list[str] = []
    for src in notebooks:
        name = f"{args.tier}/{src.name}"
        passed_so_far = sum(1 for r in results if r["status"] == "passed")
        write_termination_log(
            args.termination_log,
            f"INCOMPLETE {args.tier}: stopped while running {name} ({passed_so_far} of {len(notebooks)} passed before it)",
        )
        dest = out_dir / src.name
        t0 = time.monotonic()
        entry: dict[str, Any] = {"notebook": name, "output": str(dest)}
        try:
            run(src.resolve(), dest, params, args.timeout, args.kernel)
            entry.update(status="passed", seconds=round(time.monotonic() - t0, 2))
            print(f"PASSED {name} ({entry['seconds']:.1f} s)", flush=True)
        except _Failure as f:
            where = locate_failure(f)
            entry.update(status="failed", seconds=round(time.monotonic() - t0, 2), **where)
            cell = f"cell {where['cell_index']} {json.dumps(where['first_line'])}" if where["cell_index"] is not None else "before any cell ran"
            verdicts.append(f"FAILED {name} {cell}: {where['ename']}: {where['evalue']}")
            print(verdicts[-1], flush=True)
            print(f"--- {name}: {ANSI.sub('', str(f.cause))}", file=sys.stderr)
            traceback.print_exception(type(f.cause), f.cause, f.cause.__traceback__, file=sys.stderr)
        results.append(entry)

    failed = [r for r in results if r["status"] == "failed"]
    summary = {"tier": args.tier, "engine": engine, "passed": len(results) - len(failed), "failed": len(failed), "notebooks": results}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{args.tier}: {len(results) - len(failed)} of {len(results)} notebook(s) passed", flush=True)
    if failed:
        more = [r["notebook"] for r in failed[1:]]
        extra = f" (+{len(more)} more failed: {', '.join(more)})" if more else ""
        write_termination_log(args.termination_log, verdicts[0] + extra)
    else:
        write_termination_log(args.termination_log, f"PASSED {args.tier}: {len(results)} of {len(results)} notebook(s) passed")
    return EXIT_FAILED if failed else EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
