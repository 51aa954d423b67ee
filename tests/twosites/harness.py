"""Real FedWeb sites as separate processes, for tests that cross sites.

Each site has its own data folder, database (a SQLite file, or a PostgreSQL database
of its own when the suite runs with DATABASE_URL), web server (Daphne) and proxy
(``manage.py runproxy``: gRPC over mutual TLS on loopback). Tests talk to the sites
only as a user would: through their REST APIs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fedweb.celery import worker_arguments

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def _postgres_database(name: str) -> str | None:
    """A fresh PostgreSQL database for one site, when the suite runs on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg2

    parts = urlsplit(url)
    admin = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username,
                             password=parts.password or "", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return urlunsplit(parts._replace(path=f"/{name}"))


def _redis_for(site_index: int) -> str | None:
    """A Redis database of its own for one site's worker broker, when the suite runs with Redis."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = 8 + 2 * (int(worker[2:]) if worker[2:].isdigit() else 0) + site_index
    parts = urlsplit(url)
    site_url = urlunsplit(parts._replace(path=f"/{number}"))
    import redis

    redis.Redis.from_url(site_url).flushdb()
    return site_url


class Site:
    def __init__(self, base: Path, party_id: str, name: str, *, workers: bool = False, index: int = 0):
        self.party_id, self.name = party_id, name
        self.data = base / party_id
        self.data.mkdir(parents=True, exist_ok=True)
        self.web_port, self.proxy_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.proxy_address = f"127.0.0.1:{self.proxy_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FEDWEB_", "SITE_", "PYTEST_"))}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "fedweb.settings.base",
            "FEDWEB_DATA_DIR": str(self.data),
            "SITE_PARTY_ID": party_id,
            "SITE_NAME": name,
            "CELERY_TASK_ALWAYS_EAGER": "true",  # uploads are checked inline: no worker needed
            "FEDWEB_LOG_LEVEL": "WARNING",
        })
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        db_url = _postgres_database(f"fedweb_{party_id.replace('-', '_')}_{worker}_{os.getpid()}")
        if db_url:
            self.env["DATABASE_URL"] = db_url
            # Up to four sites run at once on the suite's PostgreSQL: none keeps idle connections.
            self.env["FEDWEB_DB_CONN_MAX_AGE"] = "0"
        else:
            self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)  # each site keeps its cache in its own database
        self.workers = workers
        if workers:
            # Jobs run in a real Celery worker: over Redis when the suite has it, else the file-system broker.
            self.env["CELERY_TASK_ALWAYS_EAGER"] = "false"
            self.env["FEDWEB_JOBS_HEARTBEAT_TIMEOUT"] = "20"  # a killed worker is noticed within half a minute
            self.env["FEDWEB_PARTNER_RETRY_SECONDS"] = "8"  # and a vanished partner within seconds
            redis_url = _redis_for(index)
            if redis_url:
                self.env["REDIS_URL"] = redis_url
                # A worker left over from an earlier run must never take this run's tasks.
                self.env["FEDWEB_BROKER_PREFIX"] = f"{party_id}-{os.getpid()}-{time.time_ns()}"
        self.web = self.proxy = self.worker = None
        self.token = None

    # --- processes -------------------------------------------------------------
    def manage(self, *args, check=True, **kwargs):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=180, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed on {self.party_id}:\n{result.stdout}\n{result.stderr}")
        return result

    def setup(self, *, static: bool = False):
        self.manage("migrate", "--noinput", "-v0")
        if static:  # pages for a browser: the hashed static files the production settings serve
            self.manage("collectstatic", "--noinput", "-v0")
        self.manage("bootstrap_site", "--password-file", str(self.data / "admin-password"), "--token-file", str(self.data / "admin-token"))
        self.token = (self.data / "admin-token").read_text().strip()
        return self

    def start_web(self):
        self.web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port), "fedweb.asgi:application"],
            cwd=ROOT, env=self.env, stdout=open(self.data / "web.log", "ab"), stderr=subprocess.STDOUT,
        )
        self._wait(lambda: self._http_ok("/healthz"), "web server")

    def start_proxy(self, **extra_env):
        env = {**self.env, **extra_env}
        self.proxy = subprocess.Popen(
            [sys.executable, "manage.py", "runproxy", "--address", self.proxy_address],
            cwd=ROOT, env=env, stdout=open(self.data / "proxy.log", "ab"), stderr=subprocess.STDOUT,
        )
        self._wait(self._proxy_listening, "proxy")

    def stop_proxy(self):
        if self.proxy and self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
        self.proxy = None

    def start_worker(self):
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", *worker_arguments(self.env),
             "--loglevel", "INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=open(self.data / "worker.log", "ab"), stderr=subprocess.STDOUT,
        )

    def kill_worker(self):
        """SIGKILL, as a crashed machine would."""
        if self.worker and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(timeout=15)
        self.worker = None

    def stop_worker(self):
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.worker = None

    def stop(self):
        self.stop_worker()
        self.stop_proxy()
        if self.web and self.web.poll() is None:
            self.web.terminate()
            try:
                self.web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.web.kill()

    def _proxy_listening(self):
        if self.proxy.poll() is not None:
            raise RuntimeError(f"proxy of {self.party_id} exited: {(self.data / 'proxy.log').read_text()[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.proxy_port)) == 0

    def _http_ok(self, path):
        if self.web.poll() is not None:
            raise RuntimeError(f"web server of {self.party_id} exited: {(self.data / 'web.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    @staticmethod
    def _wait(check, what, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not start in {seconds}s")

    # --- API ---------------------------------------------------------------------
    def api(self, method, path, body=None, *, files=None, expect=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if files is not None:
            boundary = "fedwebTestBoundary"
            parts = []
            for name, value in (body or {}).items():
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
            for name, (filename, content) in files.items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    f"Content-Type: text/csv\r\n\r\n".encode() + content + b"\r\n"
                )
            data = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        parsed = json.loads(raw) if raw and raw[:1] in b"{[" else raw
        if expect is not None and status != expect:
            raise ApiError(status, parsed)
        if expect is None and status >= 400:
            raise ApiError(status, parsed)
        return parsed

    def get(self, path, **kw):
        return self.api("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.api("POST", path, body, **kw)

    def upload(self, name: str, csv_text: str) -> dict:
        dataset = self.post("/api/datasets/", {"name": name}, files={"file": (f"{name}.csv", csv_text.encode())}, expect=201)
        if self.workers:  # checked by the worker: wait until it is ready
            dataset = eventually(lambda: (d := self.get(f"/api/datasets/{dataset['id']}/"))["status"] in ("ready", "failed") and d,
                                 seconds=60, what=f"{name} is checked")
        return dataset

    def shell(self, code: str) -> str:
        """Run Python in the site's environment (as an insider would); returns its last output line."""
        lines = self.manage("shell", "--no-imports", "-c", code).stdout.strip().splitlines()
        return lines[-1] if lines else ""


def eventually(check, *, seconds=30, interval=0.2, what="condition"):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (ApiError, AssertionError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {seconds}s (last: {last!r})")


def pair(a: Site, b: Site) -> None:
    bundle_a = a.post("/api/partners/bundle/", {"proxy_address": a.proxy_address})
    bundle_b = b.post("/api/partners/bundle/", {"proxy_address": b.proxy_address})
    b.post("/api/partners/import/", {"bundle": bundle_a}, expect=201)
    a.post("/api/partners/import/", {"bundle": bundle_b}, expect=201)


def start_pair(base: Path, *, proxies=True, workers=False, static=False):
    bank = Site(base, "bank", "Demo Bank", workers=workers, index=0).setup(static=static)
    telco = Site(base, "telco", "Demo Telco", workers=workers, index=1).setup(static=static)
    for site in (bank, telco):
        site.start_web()
        if proxies:
            site.start_proxy()
        if workers:
            site.start_worker()
    pair(bank, telco)
    return bank, telco


def active_project(bank: Site, telco: Site, name="Credit risk") -> str:
    project = bank.post("/api/projects/", {"partner": telco.party_id, "name": name, "purpose": "Joint credit model", "we_hold_labels": True}, expect=201)
    pid = project["id"]
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["status"] == "invited", what="invitation arrives")
    telco.post(f"/api/projects/{pid}/accept/", {"comment": "ok"})
    eventually(lambda: bank.get(f"/api/projects/{pid}/")["status"] == "active", what="acceptance arrives")
    return pid
