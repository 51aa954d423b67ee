"""``make demo``'s launcher: ports checked and named before anything is prepared, one demo per
folder, a second demo on other ports, and no preparation when nothing changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fedweb import demo

ROOT = Path(__file__).resolve().parents[2]


def _free_port_pair() -> int:
    """A port p with p and p + 1 both free."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000 and not demo.busy_ports({port: "a", port + 1: "b"}):
            return port
    raise AssertionError("no two free ports in a row")


def _launch(data: Path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(FEDWEB_DATA_DIR=str(data), **env)
    return subprocess.run([sys.executable, "-m", "fedweb.demo"], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60)


def test_the_proxy_ports_move_with_the_web_port():
    assert demo.demo_ports({}) == (8000, 7443)
    assert demo.demo_ports({"DEMO_PORT": "8100"}) == (8100, 7543)
    assert demo.demo_ports({"DEMO_PORT": "8100", "DEMO_PROXY_PORT": "9443"}) == (8100, 9443)


@pytest.mark.parametrize("env, words", [
    ({"DEMO_PORT": "eighty"}, "must be port numbers"),
    ({"DEMO_PORT": "80"}, "outside 1024–65535"),
    ({"DEMO_PORT": "8000", "DEMO_PROXY_PORT": "8001"}, "overlap"),
])
def test_impossible_ports_are_refused_in_words(env, words):
    with pytest.raises(SystemExit, match=words):
        demo.demo_ports(env)


def test_a_busy_port_is_named_before_anything_is_written(tmp_path):
    web = _free_port_pair()
    proxy = _free_port_pair()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", proxy + 1))
        other_program.listen()
        result = _launch(tmp_path / "demo", DEMO_PORT=str(web), DEMO_PROXY_PORT=str(proxy))
    assert result.returncode == 1
    assert f"port {proxy + 1} (Demo Data Provider's proxy) is in use by another program" in result.stderr
    assert "make demo DEMO_PORT=8100" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()  # nothing prepared, nothing written


def test_one_folder_runs_one_demo_at_a_time(tmp_path):
    held = demo.hold_folder(tmp_path)
    try:
        # A second demo process on the same folder is refused while the first holds it.
        result = subprocess.run([sys.executable, "-c", f"from fedweb import demo; demo.hold_folder(__import__('pathlib').Path({str(tmp_path)!r}))"],
                                cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 1 and f"Another demo is running from {tmp_path}" in result.stderr
    finally:
        held.close()
    demo.hold_folder(tmp_path).close()  # free again once the first one ended


def test_a_demo_folder_keeps_the_ports_it_was_paired_with(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / ".paired").write_text("ok")
    (folder / "demo.json").write_text(json.dumps({"ports": {"web": 8000, "proxy": 7443}, "prepared": "x"}))
    web, proxy = _free_port_pair(), _free_port_pair()
    result = _launch(folder, DEMO_PORT=str(web), DEMO_PROXY_PORT=str(proxy))
    assert result.returncode == 1
    assert "was set up with DEMO_PORT=8000 DEMO_PROXY_PORT=7443" in result.stderr and "make clean-demo" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [".paired", ".running", "demo.json"]


def test_the_preparation_fingerprint_follows_the_files_it_depends_on(tmp_path, monkeypatch):
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    migration = tmp_path / "app" / "migrations" / "0001_initial.py"
    migration.write_text("# one\n")
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    first = demo.preparation_fingerprint()
    assert demo.preparation_fingerprint() == first
    migration.write_text("# two\n")
    assert demo.preparation_fingerprint() != first


def test_the_makefile_gives_a_second_demo_its_own_folder():
    made = subprocess.run(["make", "-n", "demo", "DEMO_PORT=8100"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "FEDWEB_DATA_DIR=var/demo-8100 DEMO_PORT=8100" in made.stdout
    made = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "FEDWEB_DATA_DIR=var/demo DEMO_PORT=8000" in made.stdout
