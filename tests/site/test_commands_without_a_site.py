"""A management command pointed where there is no site says so in one line and creates nothing;
pointed at a prepared site, it works."""

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOME_ID = str(uuid.uuid4())

# Every command of ours that works on a site's database, with arguments it would accept.
SITE_COMMANDS = [
    ["verify_audit"],
    ["bootstrap_site", "--password-file", "{tmp}/admin-password.txt"],
    ["load_demo_data", "--owner", "admin"],
    ["runproxy", "--address", "127.0.0.1:0"],
    ["site_identity", "show"],
    ["export_model", SOME_ID, "{tmp}/model.json"],
    ["import_model", "{tmp}/model.json", "--project", SOME_ID],
    ["site_bundle", "export", "--proxy-address", "127.0.0.1:7443"],
    ["demo_project", "status"],
    # Django's own, checked in manage.py before they open the database.
    ["showmigrations"],
    ["createsuperuser", "--noinput", "--username", "root", "--email", "root@example.invalid"],
    ["changepassword", "admin"],
    ["dumpdata", "--output", "{tmp}/dump.json"],
    ["clearsessions"],
    ["runserver", "127.0.0.1:0", "--noreload"],
]
NO_DATABASE_COMMANDS = [["check"], ["engine_strings", "--check"]]


def manage(args, *, tmp, cwd=ROOT, **env):
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("DJANGO_", "FEDWEB_", "SITE_", "PYTEST_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    # Byte-code caches are Python's, not the command's: keep them out of the "created nothing" comparison.
    environment.update({"DJANGO_SETTINGS_MODULE": "fedweb.settings.base", "PYTHONDONTWRITEBYTECODE": "1", **env})
    args = [arg.format(tmp=tmp) for arg in args]
    return subprocess.run([sys.executable, "manage.py", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def assert_refused_in_one_line(result, args, *, where: str):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"No FedWeb site database in {where}" in lines[0]
    assert f"python manage.py {args[0]}" in lines[0]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else ["<missing>"]


# --- A fresh clone --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """The project's files as a new user has them: no var/, nothing generated."""
    clone = tmp_path_factory.mktemp("clone") / "fedweb"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=clone, check=True)
    subprocess.run(git + ["add", "-A"], cwd=clone, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "clone"], cwd=clone, check=True)
    return clone


def git_status(clone: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=clone, capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("args", SITE_COMMANDS, ids=lambda a: a[0])
def test_in_a_fresh_clone_a_site_command_says_where_it_looked_and_creates_nothing(fresh_clone, tmp_path, args):
    out = tmp_path / "out"  # where the command was asked to write its files
    out.mkdir()
    before = git_status(fresh_clone)
    result = manage(args, tmp=out, cwd=fresh_clone)
    assert_refused_in_one_line(result, args, where=str(fresh_clone / "var"))
    assert "FEDWEB_DATA_DIR=var/demo/bank" in result.stderr
    assert git_status(fresh_clone) == before == ""
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args", NO_DATABASE_COMMANDS, ids=lambda a: a[0])
def test_in_a_fresh_clone_a_command_without_a_database_works_and_creates_nothing(fresh_clone, tmp_path, args):
    result = manage(args, tmp=tmp_path, cwd=fresh_clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert git_status(fresh_clone) == ""


def test_the_message_is_in_the_sites_language(tmp_path):
    result = manage(["verify_audit"], tmp=tmp_path, FEDWEB_DATA_DIR=str(tmp_path / "nowhere"), FEDWEB_LANGUAGE="zh-hans")
    assert result.returncode == 1
    assert "没有 FedWeb 站点数据库" in result.stderr and "FEDWEB_DATA_DIR=var/demo/bank" in result.stderr
    assert "No FedWeb" not in result.stderr


# --- A data folder that is not a site -------------------------------------------------------

def test_an_existing_folder_without_a_database_is_left_as_it_was(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    result = manage(["verify_audit"], tmp=tmp_path, FEDWEB_DATA_DIR=str(data))
    assert_refused_in_one_line(result, ["verify_audit"], where=str(data))
    assert "no fedweb.sqlite3 there" in result.stderr
    assert tree(data) == ["notes.txt"]


def test_an_empty_database_file_is_not_a_site_and_is_not_touched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "fedweb.sqlite3").write_bytes(b"")
    result = manage(["site_identity", "show"], tmp=tmp_path, FEDWEB_DATA_DIR=str(data))
    assert_refused_in_one_line(result, ["site_identity"], where=str(data))
    assert "fedweb.sqlite3 was never migrated" in result.stderr
    assert tree(data) == ["fedweb.sqlite3"] and (data / "fedweb.sqlite3").stat().st_size == 0


def test_a_file_that_is_not_a_database_is_named_and_not_touched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "fedweb.sqlite3").write_bytes(b"this is not SQLite, just some bytes that are long enough " * 4)
    result = manage(["verify_audit"], tmp=tmp_path, FEDWEB_DATA_DIR=str(data))
    assert_refused_in_one_line(result, ["verify_audit"], where=str(data))
    assert "fedweb.sqlite3 cannot be read" in result.stderr
    assert tree(data) == ["fedweb.sqlite3"]


# --- A prepared site -------------------------------------------------------------------------

def test_migrate_makes_a_site_in_an_empty_folder_and_the_commands_then_work(tmp_path):
    data = tmp_path / "new-site"
    env = {"FEDWEB_DATA_DIR": str(data), "SITE_PARTY_ID": "bank"}
    created = manage(["migrate", "--noinput", "-v0"], tmp=tmp_path, **env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert {"fedweb.sqlite3", "secret_key", "artifacts", "tmp", "broker/queue"} <= set(tree(data))
    assert (data / "secret_key").stat().st_mode & 0o077 == 0
    key = (data / "secret_key").read_text()

    for args in (["bootstrap_site", "--password-file", "{tmp}/admin-password.txt"], ["site_identity", "show"],
                 ["verify_audit"]):
        result = manage(args, tmp=tmp_path, **env)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "audit trail intact" in result.stdout
    assert (data / "secret_key").read_text() == key  # every process of the site uses the one key
    with sqlite3.connect(f"file:{quote(str(data / 'fedweb.sqlite3'))}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM accounts_user").fetchone() == (1,)


# --- PostgreSQL ---------------------------------------------------------------------------------

def _postgres_server():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs DATABASE_URL to name a PostgreSQL server")
    return url.rsplit("/", 1)[0]


def test_a_missing_postgresql_database_is_named_in_one_line(tmp_path):
    server = _postgres_server()
    name = f"fedweb_nosite_{uuid.uuid4().hex[:8]}"
    result = manage(["verify_audit"], tmp=tmp_path, DATABASE_URL=f"{server}/{name}", FEDWEB_DATA_DIR=str(tmp_path / "data"))
    assert_refused_in_one_line(result, ["verify_audit"], where=f"PostgreSQL database {name}")
    assert "cannot connect" in result.stderr and "DATABASE_URL=" in result.stderr
    assert not (tmp_path / "data").exists()


def test_an_empty_postgresql_database_is_not_a_site(tmp_path):
    import psycopg2

    server = _postgres_server()
    name = f"fedweb_empty_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        result = manage(["bootstrap_site", "--password-file", "{tmp}/pw"], tmp=tmp_path,
                        DATABASE_URL=f"{server}/{name}", FEDWEB_DATA_DIR=str(tmp_path / "data"))
        assert_refused_in_one_line(result, ["bootstrap_site"], where=f"PostgreSQL database {name}")
        assert "it was never migrated" in result.stderr
        assert not (tmp_path / "data").exists() and not (tmp_path / "pw").exists()
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.mark.django_db
def test_against_a_migrated_postgresql_site_the_command_works(tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the suite runs on SQLite")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    result = manage(["verify_audit"], tmp=tmp_path, DATABASE_URL=url, FEDWEB_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit trail intact" in result.stdout
