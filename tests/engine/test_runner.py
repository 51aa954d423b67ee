"""The local runner: ``python -m engine describe|run`` on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.__main__ import main
from engine.io import read_table

REPO = Path(__file__).resolve().parents[2]


def engine_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def csvs(tmp_path):
    guest = tmp_path / "a.csv"
    host = tmp_path / "b.csv"
    guest.write_text(
        "id,age,score\n0012345,31,0.5\nNA,40,\n12345,22,NA\n\"a \",50,1.5\nnull,60,2.5\nonly-guest,1,1\n",
        encoding="utf-8",
    )
    host.write_text("id,income\n12345,10\n0012345,20\nNA,30\na,40\nnull,50\nonly-host,60\n", encoding="utf-8")
    return guest, host


def test_run_psi_writes_each_roles_aligned_rows_and_metrics(csvs, tmp_path):
    guest, host = csvs
    out = tmp_path / "out"
    result = engine_cli("run", "psi", "--data", f"guest={guest}", f"host={host}",
                        "--params", '{"id_column": "id", "reveal": "both"}', "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outputs"]["guest"]["data"].endswith("guest/data.csv")

    guest_rows = read_table(out / "guest" / "data.csv", text_columns=["id"])
    host_rows = read_table(out / "host" / "data.csv", text_columns=["id"])
    # "0012345" is not "12345", "NA" and "null" are ids, not missing values; "a " is not "a".
    assert sorted(guest_rows["id"]) == ["0012345", "12345", "NA", "null"]
    assert guest_rows["id"].tolist() == host_rows["id"].tolist()
    assert list(guest_rows.columns) == ["id", "age", "score"] and list(host_rows.columns) == ["id", "income"]
    incomes = dict(zip(host_rows["id"], host_rows["income"], strict=True))
    assert incomes == {"12345": 10, "0012345": 20, "NA": 30, "null": 50}
    metrics = json.loads((out / "guest" / "metrics.json").read_text())
    assert metrics["intersection_size"] == 4 and metrics["input_rows"] == 6 and metrics["peer_unique_ids"] == 6


def test_run_reads_and_writes_parquet_and_takes_per_role_parameters(tmp_path):
    pq.write_table(pa.table({"phone": ["007", "008", "009"], "x": [1, 2, 3]}), tmp_path / "g.parquet")
    pq.write_table(pa.table({"mobile": ["009", "007"], "y": [9.0, 7.0]}), tmp_path / "h.parquet")
    out = tmp_path / "out"
    result = engine_cli("run", "psi", "--data", f"guest={tmp_path / 'g.parquet'}", f"host={tmp_path / 'h.parquet'}",
                        "--params", '{"id_column": "phone", "reveal": "guest"}',
                        "--role-params", 'host={"id_column": "mobile"}',
                        "--out", str(out), "--format", "parquet")
    assert result.returncode == 0, result.stderr
    guest_rows = pq.read_table(out / "guest" / "data.parquet").to_pandas()
    assert sorted(guest_rows["phone"]) == ["007", "009"]
    assert pq.read_table(out / "host" / "data.parquet").num_rows == 0
    assert json.loads((out / "host" / "metrics.json").read_text())["intersection_size"] == 2


def test_describe_prints_every_component_or_one_as_json():
    everything = engine_cli("describe")
    assert everything.returncode == 0
    assert "psi" in [c["name"] for c in json.loads(everything.stdout)]
    one = engine_cli("describe", "psi")
    assert json.loads(one.stdout)["parameters"]["properties"]["id_column"]["default"] == "id"


def test_an_unknown_component_exits_2_with_one_line_from_a_real_process():
    result = engine_cli("run", "nope", "--out", "x")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: unknown component 'nope'")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["describe", "nope"], "unknown component 'nope'"),
        (["run", "psi", "--params", '{"id_col": "id"}'], "unknown parameter 'id_col'"),
        (["run", "psi", "--params", '{"reveal": "everyone"}'], "invalid parameter 'reveal'"),
        (["run", "psi", "--params", '{"min_overlap": -1}'], "invalid parameter 'min_overlap'"),
        (["run", "psi", "--params", "{not json"], "--params is not valid JSON"),
        (["run", "psi", "--params", "[1]"], "--params must be a JSON object"),
        (["run", "psi", "--data", "guest={missing}", "host={host}"], "missing.csv: no such file"),
        (["run", "psi", "--data", "guest={guest}", "host={host}", "--params", '{"id_column": "uid"}'],
         "no column 'uid'"),
        (["run", "psi", "--data", "guest={guest}", "host={host}", "--role-params", 'host={"id_column": "phone"}'],
         "the host's id column is the parameter id_column: pass --role-params host="),
        (["run", "psi", "--data", "arbiter={guest}"], "unknown role 'arbiter'"),
        (["run", "psi", "--data", "guest={guest}"], "role 'host' needs input 'data'"),
        (["run", "psi", "--data", "guest"], "must look like KEY=VALUE"),
        (["run", "psi", "--data", "guest={notes}", "host={host}"], "unsupported file type '.md'"),
        (["frobnicate"], "invalid choice"),
        (["run", "psi", "--data", "guest={guest}", "host={host}", "--params", '{"min_overlap": 99}'],
         "min_overlap=99"),
    ],
)
def test_user_errors_exit_2_with_a_single_line_naming_the_problem(args, message, csvs, tmp_path, capsys):
    guest, host = csvs
    (tmp_path / "notes.md").write_text("x")
    paths = {"guest": guest, "host": host, "missing": tmp_path / "missing.csv", "notes": tmp_path / "notes.md"}
    for name, path in paths.items():
        args = [a.replace("{" + name + "}", str(path)) for a in args]
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err


def test_reading_csv_keeps_ids_verbatim_but_parses_other_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffid,v\n007,1\nNA,\n,2\n".encode("utf-8"))  # with an Excel byte-order mark
    table = read_table(path, text_columns=["id"])
    assert table["id"].tolist() == ["007", "NA", ""]
    assert table["v"].isna().tolist() == [False, True, False] and table["v"].iloc[0] == 1
