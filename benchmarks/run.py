"""The benchmark harness: run every benchmark module, print and record a table.

Usage::

    python -m benchmarks            # full run, rewrites docs/benchmarks.md (make bench)
    python -m benchmarks --quick    # small sizes, prints the table only
    python -m benchmarks --quick --output /tmp/bench.md
    python -m benchmarks jobs       # only benchmarks.bench_jobs (make bench-jobs)

Names after the options choose modules (``jobs``, ``bench_jobs`` or
``benchmarks.bench_jobs``); without names every module runs.

The modules are ``benchmarks.bench_psi`` and ``benchmarks.bench_paillier`` first,
then every other ``benchmarks/bench_*.py`` in name order. Each exposes
``run(quick: bool = False) -> list[dict]`` returning rows with these keys:

========== ===============================================================
benchmark  what is measured, with its unit
ours       our figure (a number or a short text with units)
reference  the reference figure, saying what the reference is
ratio      float, ``ours / reference`` in the benchmark's unit (for times,
           below 1 means faster than the reference)
target     the requirement, as text
ok         bool, whether the requirement is met
========== ===============================================================

A module may set ``SECTION = (title, introduction)``: its rows then go in a
section of their own under the main table. A run of chosen modules that all
have sections rewrites only those sections of docs/benchmarks.md (the rest of
the page stays as the last full run wrote it); any other run of chosen
modules writes nothing unless ``--output`` says where.

A module that is not there yet (``ModuleNotFoundError`` for the module
itself) is skipped and listed as such; a module that fails is recorded as a
failed row and the others still run. A quick run never overwrites
docs/benchmarks.md unless ``--output`` says where to write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import math
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PREFERRED = ("benchmarks.bench_psi", "benchmarks.bench_paillier")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
KEYS = ("benchmark", "ours", "reference", "ratio", "target", "ok")
SECTIONS: dict[str, str] = {}  # section title -> introduction, from the modules run


def modules() -> list[str]:
    """The benchmark modules to run, in order (the preferred ones even if absent)."""
    here = Path(__file__).resolve().parent
    found = sorted(f"benchmarks.{m.name}" for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    return list(PREFERRED) + [name for name in found if name not in PREFERRED]


def choose(names: list[str]) -> list[str]:
    """The modules named on the command line (``jobs``, ``bench_jobs`` or ``benchmarks.bench_jobs``)."""
    available = modules()
    chosen = []
    for name in names:
        short = name.removeprefix("benchmarks.").removeprefix("bench_")
        full = f"benchmarks.bench_{short}"
        if full not in available:
            known = ", ".join(m.removeprefix("benchmarks.bench_") for m in available)
            raise SystemExit(f"python -m benchmarks: no benchmark {name!r} (benchmarks: {known})")
        chosen.append(full)
    return chosen


def section_of(name: str) -> tuple[str, str] | None:
    """The module's own section ``(title, introduction)``, if it declares one (and can be imported)."""
    try:
        return getattr(importlib.import_module(name), "SECTION", None)
    except ModuleNotFoundError:
        return None


def collect(quick: bool, names: list[str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every available module (or the ones named); return its rows and notes about skipped modules.

    Each row gets a ``section`` key: the title of its module's section, or None.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in names or modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                notes.append(f"`{name}` is not available yet: skipped.")
                continue
            raise
        section = getattr(module, "SECTION", None)
        title = section[0] if section else None
        if section:
            SECTIONS[title] = section[1]
        print(f"running {name} ({'quick' if quick else 'full'}) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            module_rows = module.run(quick=quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
            traceback.print_exc()
            rows.append({
                "section": title,
                "benchmark": f"{name} (failed)",
                "ours": f"{type(exc).__name__}: {exc}",
                "reference": "",
                "ratio": float("nan"),
                "target": "",
                "ok": False,
            })
            continue
        for row in module_rows:
            missing = [k for k in KEYS if k not in row]
            if missing:
                raise ValueError(f"{name} returned a row without {missing}: {row}")
            rows.append({"section": title, **row})
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, notes


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| benchmark | ours | reference | ratio | target | ok |", "|---|---|---|---|---|---|"]
    return lines + ["| " + " | ".join(_cell(row[k]) for k in KEYS) + " |" for row in rows]


def _machine(quick: bool) -> list[str]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, "
        f"{platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({sys.executable})",
        f"- Date: {now}",
        f"- Mode: {'quick (reduced sizes: figures are not comparable to the targets)' if quick else 'full'}",
    ]


def render_section(title: str, rows: list[dict[str, Any]], quick: bool) -> str:
    """One module's own section: its title, its introduction, when and where it ran, its table."""
    lines = [f"## {title}", ""]
    if SECTIONS.get(title):
        lines += [SECTIONS[title], ""]
    lines += [*_machine(quick), "", *_table(rows)]
    return "\n".join(lines) + "\n"


def _titles(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["section"] for row in rows if row.get("section")))


def render(rows: list[dict[str, Any]], notes: list[str], quick: bool) -> str:
    """The Markdown page: how to run, the machine, the table, then each module's own section."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m benchmarks`; `python -m benchmarks --quick` for a",
        "fast smoke run that does not touch this file). Do not edit by hand.",
        "",
        *_machine(quick),
        "- `ratio` is ours / reference in the benchmark's unit: for times, below 1 is faster.",
        "",
        *_table([row for row in rows if not row.get("section")]),
    ]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    page = "\n".join(lines) + "\n"
    for title in _titles(rows):
        page += "\n" + render_section(title, [row for row in rows if row.get("section") == title], quick)
    return page


def replace_sections(page: str, rows: list[dict[str, Any]], quick: bool) -> str:
    """``page`` with the sections of these rows rewritten (or added at the end); the rest kept."""
    for title in _titles(rows):
        fresh = render_section(title, [row for row in rows if row.get("section") == title], quick)
        heading = f"## {title}\n"
        start = page.find(heading)
        if start < 0:
            page = page.rstrip("\n") + "\n\n" + fresh
            continue
        end = page.find("\n## ", start + len(heading))
        page = page[:start] + fresh + (page[end:] if end >= 0 else "")
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"Markdown file to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)} for full runs, "
        "nothing for quick runs)",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmarks to run, e.g. jobs (default: all); see the module docstring for what is written")
    args = parser.parse_args(argv)
    names = choose(args.names)
    rows, notes = collect(args.quick, names or None)
    page = render(rows, notes, args.quick)
    print(page)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if names and args.output is None:
        # A partial run: only modules with sections of their own can be written into the page, in place.
        if args.quick or not all(section_of(name) for name in names) or not DEFAULT_OUTPUT.exists():
            output = None
            print("a run of chosen benchmarks writes nothing without --output", file=sys.stderr)
        else:
            page = replace_sections(DEFAULT_OUTPUT.read_text(encoding="utf-8"), rows, args.quick)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    # Missed targets are reported in the table; only a crashed module fails the run.
    return 1 if any(row["benchmark"].endswith("(failed)") for row in rows) else 0
