"""The local runner: ``python -m engine``.

::

    python -m engine describe                # every component, as JSON
    python -m engine describe psi            # one component
    python -m engine run psi --data guest=a.csv host=b.csv \\
        --params '{"id_column": "id", "reveal": "both"}' --out DIR

``run`` executes every role in this process (threads, in-memory transport),
reading each role's inputs from local CSV or Parquet files, and writes each
role's outputs to ``DIR/<role>/`` (tables as ``<name>.csv`` or ``.parquet``,
metrics as ``metrics.json``). It prints a JSON summary on stdout.

``--data`` takes ``ROLE=PATH`` (the role's ``data`` input) or
``ROLE.INPUT=PATH``. The id column named by the ``id_column`` parameter (if
the component has one) is read as text, verbatim.

Exit status: 0 on success; 2 with a single ``error: ...`` line on stderr for
anything the user can fix (unknown component, bad parameters, missing file or
column, a protocol or policy refusal); 1 with a traceback for engine bugs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine.errors import EngineError, InvalidInput, InvalidParameters

EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 (argparse prints usage too)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="FedWeb federated engine runner.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    describe = commands.add_parser("describe", help="print component declarations as JSON")
    describe.add_argument("component", nargs="?", help="a component name (default: all)")
    describe.add_argument("--version", help="a specific version of the component")

    run = commands.add_parser("run", help="run every role of a component locally")
    run.add_argument("component", help="component name, e.g. psi")
    run.add_argument("--version", help="a specific version of the component")
    run.add_argument(
        "--data",
        nargs="+",
        default=[],
        metavar="ROLE[.INPUT]=PATH",
        help="input files, e.g. guest=a.csv host=b.parquet",
    )
    run.add_argument("--params", default="{}", help="parameters shared by all roles, as JSON")
    run.add_argument(
        "--role-params",
        nargs="+",
        default=[],
        metavar="ROLE=JSON",
        help='per-role parameter overrides, e.g. host=\'{"id_column": "phone"}\'',
    )
    run.add_argument("--out", required=True, help="output directory (created if needed)")
    run.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table output format")
    run.add_argument("--timeout", type=float, default=None, help="seconds each message may take")
    return parser


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameters(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidParameters(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _split_assignment(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise _UsageError(f"{what} {text!r} must look like KEY=VALUE")
    return key, value


def _describe(args: argparse.Namespace) -> int:
    from engine.registry import describe

    print(json.dumps(describe(args.component, args.version), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from engine.federation.local import run_local
    from engine.io import read_table, write_outputs
    from engine.registry import get_component

    component = get_component(args.component, args.version)
    params = _json_object(args.params, "--params")
    role_params: dict[str, dict[str, Any]] = {}
    for item in args.role_params:
        role, text = _split_assignment(item, "--role-params")
        role_params[role] = _json_object(text, f"--role-params for {role!r}")

    # Validate before touching any file, so a typo fails fast.
    params_by_role = {}
    for role in component.roles:
        merged = {**params, **role_params.get(role, {})}
        params_by_role[role] = component.validate_params(merged)
    for role in role_params:
        if role not in component.roles:
            raise _UsageError(f"unknown role {role!r} in --role-params (roles: {', '.join(component.roles)})")

    inputs: dict[str, dict[str, Any]] = {}
    for item in args.data:
        target, path = _split_assignment(item, "--data")
        role, _, input_name = target.partition(".")
        input_name = input_name or "data"
        if role not in component.roles:
            raise _UsageError(f"unknown role {role!r} in --data (roles: {', '.join(component.roles)})")
        port = next((p for p in component.inputs_for(role) if p.name == input_name), None)
        if port is not None and port.type == "model":
            # Model inputs are model files (engine/ml/model_io.py: JSON, never pickle).
            from engine.ml import model_io

            inputs.setdefault(role, {})[input_name] = model_io.load(path)
            continue
        id_column = getattr(params_by_role[role], "id_column", None)
        text_columns = [id_column] if isinstance(id_column, str) else []
        try:
            inputs.setdefault(role, {})[input_name] = read_table(path, text_columns=text_columns)
        except InvalidInput as exc:
            if exc.column is None or exc.column != id_column:
                raise
            # The id column is a parameter: say which one, and how to set it for this role.
            raise InvalidInput(f"{exc} — the {role}'s id column is the parameter id_column: pass --role-params "
                               f"{role}='{{\"id_column\": \"...\"}}' (or --params for every role)",
                               input=input_name, column=id_column) from None
    for role in component.roles:
        for port in component.inputs_for(role):
            if not port.optional and port.name not in inputs.get(role, {}):
                raise InvalidInput(
                    f"role {role!r} needs input {port.name!r}: pass --data {role}"
                    f"{'' if port.name == 'data' else '.' + port.name}=PATH",
                    input=port.name,
                )

    outputs = run_local(
        component, params, inputs, role_params=role_params or None, timeout=args.timeout
    )
    out = Path(args.out)
    summary = {
        role: write_outputs(role_outputs, out / role, fmt=args.format)
        for role, role_outputs in outputs.items()
    }
    print(json.dumps({"component": component.name, "version": component.version, "outputs": summary}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "describe":
            return _describe(args)
        return _run(args)
    except (_UsageError, EngineError) as exc:
        message = " ".join(str(exc).split())  # exactly one line
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into head). Point it at devnull so
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
