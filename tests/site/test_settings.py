"""Settings come from the environment and fail loudly on malformed values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from fedweb.settings import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "helper, name, value",
    [
        (lambda n: env.env_bool(n, False), "X_BOOL", "maybe"),
        (lambda n: env.env_int(n, 1), "X_INT", "ten"),
        (lambda n: env.env_int(n, 1, minimum=1), "X_INT", "0"),
    ],
)
def test_a_malformed_value_raises_naming_the_variable(helper, name, value, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        helper(name)


@pytest.mark.parametrize("url", ["mysql://x/y", "postgres://host", "postgres://h:notaport/db", "sqlite://"])
def test_a_malformed_database_url_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env.parse_database_url(url)


def test_a_postgres_url_is_parsed():
    db = env.parse_database_url("postgres://u:p%40ss@db.local:5433/fedweb?sslmode=require")
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("fedweb", "u", "p@ss", "db.local", "5433")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_a_secret_can_come_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env.env_str("X_SECRET") == "s3cret"


def _manage(args, extra_env, tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FEDWEB_", "SITE_"))}
    environment.pop("DATABASE_URL", None)
    environment.pop("REDIS_URL", None)
    environment.update({"FEDWEB_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "fedweb.settings.base", **extra_env})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_the_site_refuses_to_start_with_a_malformed_party_id(tmp_path):
    result = _manage(["check"], {"SITE_PARTY_ID": "Bad Party!"}, tmp_path)
    assert result.returncode != 0
    assert "SITE_PARTY_ID" in result.stderr


def test_check_deploy_passes_with_the_documented_production_environment(tmp_path):
    production = {
        "FEDWEB_EMBEDDED": "false",
        "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "DJANGO_ALLOWED_HOSTS": "fedweb.bank.example",
        "FEDWEB_HTTPS": "true",
        "SITE_PARTY_ID": "bank",
        "SITE_NAME": "Bank",
    }
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], production, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_mode_requires_a_secret_key(tmp_path):
    result = _manage(["check"], {"FEDWEB_EMBEDDED": "false"}, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_processes_of_a_new_site_starting_at_once_agree_on_one_complete_secret_key(tmp_path):
    """The web server, the worker and the proxy of a fresh site may start in the same instant:
    each either finds no key file or a complete one (never an empty one), and all use one key."""
    code = ("import django; django.setup(); from django.conf import settings; "
            "from fedweb.sitedata import prepare_site_files; prepare_site_files(); print(settings.SECRET_KEY)")
    for attempt in range(3):
        data = tmp_path / f"site-{attempt}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY")}
        env.update(DJANGO_SETTINGS_MODULE="fedweb.settings.base", FEDWEB_DATA_DIR=str(data))
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
        outputs = [proc.communicate(timeout=120) for proc in procs]
        assert all(proc.returncode == 0 for proc in procs), [err[-300:] for _, err in outputs]
        keys = {out.strip() for out, _ in outputs}
        assert len(keys) == 1 and len(keys.pop()) >= 50
        assert sorted(p.name for p in data.iterdir() if "secret_key" in p.name) == ["secret_key"]  # no drafts left
