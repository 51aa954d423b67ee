"""``make demo``: two sites on this machine, paired, with sample data and an accepted project.

- **Demo Bank** (party ``bank``) holds labels: http://127.0.0.1:8000/
- **Demo Data Provider** (party ``provider``) holds extra features: http://127.0.0.1:8001/

Each site has its own data folder (database, files, keys) under ``var/demo/``, its own
web server, Celery worker and proxy (gRPC with mutual TLS on ports 7443 / 7444), all on
the embedded default (SQLite and local files). The first run prepares everything; later
runs reuse it, and skip the preparation entirely when nothing it depends on changed
(``make clean-demo`` starts afresh). Ctrl-C stops both sites.

Ports: ``DEMO_PORT`` (8000) is the bank's web port and the provider's is the next one;
the proxies use ``DEMO_PROXY_PORT`` and the next one, by default 7443 moved by as much as
``DEMO_PORT`` moved from 8000, so a second demo on ``DEMO_PORT=8100`` (in its own data
folder, which the Makefile names ``var/demo-8100``) uses 8100/8101 and 7543/7544. Every
port is checked before anything is prepared, and a folder runs one demo at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fedweb.celery import worker_arguments

ROOT = Path(__file__).resolve().parent.parent


class DemoSite:
    def __init__(self, base: Path, party_id: str, name: str, web_port: int, proxy_port: int, side: str):
        self.party_id, self.name, self.side = party_id, name, side
        self.web_port, self.proxy_port = web_port, proxy_port
        self.data = base / party_id
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "fedweb.settings.base",
            "FEDWEB_DATA_DIR": str(self.data),
            "SITE_PARTY_ID": party_id,
            "SITE_NAME": name,
            "FEDWEB_LOG_LEVEL": "WARNING",
        })
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, quiet: bool = True) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"{self.name}: manage.py {' '.join(args)} failed")
        return result.stdout

    def prepare(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("bootstrap_site", "--password-file", str(self.data / "admin-password.txt"))
        self.manage("load_demo_data", "--owner", "admin", "--side", self.side)

    @property
    def password(self) -> str:
        return (self.data / "admin-password.txt").read_text(encoding="utf-8").strip()

    @property
    def ports(self) -> dict[int, str]:
        return {self.web_port: f"{self.name}'s web server", self.proxy_port: f"{self.name}'s proxy"}

    def start(self) -> None:
        log = open(self.data / "site.log", "ab")
        commands = [
            ["-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port), "fedweb.asgi:application"],
            ["-m", "celery", *worker_arguments(self.env), "--loglevel", "WARNING"],
            ["manage.py", "runproxy", "--address", f"127.0.0.1:{self.proxy_port}"],
        ]
        for command in commands:
            self.processes.append(subprocess.Popen([sys.executable, *command], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def wait_listening(self) -> None:
        for port in (self.web_port, self.proxy_port):
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise SystemExit(f"{self.name} did not start on port {port}. The end of its log "
                                     f"({self.data / 'site.log'}):\n{self.log_tail()}")
                time.sleep(0.2)

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = (self.data / "site.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def pair(a: DemoSite, b: DemoSite) -> None:
    for site, other in ((a, b), (b, a)):
        bundle = site.data / "site-bundle.json"
        bundle.write_text(site.manage("site_bundle", "export", "--proxy-address", f"127.0.0.1:{site.proxy_port}"), encoding="utf-8")
        other.manage("site_bundle", "import", str(bundle))


def wait_for(site: DemoSite, step: str, expected: str, seconds: int = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = subprocess.run([sys.executable, "manage.py", "demo_project", step], cwd=ROOT, env=site.env, capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip() == expected:
            return
        time.sleep(0.5)
    raise SystemExit(f"{site.name}: the demo project did not become {expected} (see {site.data / 'site.log'})")


# What the preparation (migrate, collectstatic, the admin, the sample tables) depends on: when
# none of these files changed since the last run, it is skipped and the sites start at once.
_PREPARATION_INPUTS = ("*/migrations/*.py", "frontend/static/**/*", "engine/samples.py", "fedweb/demo.py",
                       "datasets/management/commands/load_demo_data.py",
                       "fedweb/accounts/management/commands/bootstrap_site.py", "requirements.txt")


def preparation_fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in _PREPARATION_INPUTS:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def demo_ports(env=os.environ) -> tuple[int, int]:
    """(bank's web port, bank's proxy port); the provider uses the next port of each."""
    try:
        web = int(env.get("DEMO_PORT") or 8000)
        proxy = int(env.get("DEMO_PROXY_PORT") or 7443 + (web - 8000))
    except ValueError as exc:
        raise SystemExit(f"DEMO_PORT and DEMO_PROXY_PORT must be port numbers ({exc})") from None
    for port in (web, web + 1, proxy, proxy + 1):
        if not 1024 <= port <= 65535:
            raise SystemExit(f"Port {port} is outside 1024–65535: choose another DEMO_PORT or DEMO_PROXY_PORT")
    if {web, web + 1} & {proxy, proxy + 1}:
        raise SystemExit(f"The web ports ({web}, {web + 1}) and the proxy ports ({proxy}, {proxy + 1}) overlap: "
                         "set DEMO_PROXY_PORT to another port")
    return web, proxy


def busy_ports(ports: dict[int, str]) -> list[str]:
    """The ports some other program listens on, each with what the demo wanted it for."""
    busy = []
    for port, purpose in ports.items():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port} ({purpose})")
    return busy


def hold_folder(base: Path):
    """Lock the demo folder for as long as this demo runs: two demos on one folder would share
    their databases. The lock goes with the process, however it ends."""
    base.mkdir(parents=True, exist_ok=True)
    lock = open(base / ".running", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"Another demo is running from {base}. Stop it first, or start a second demo with "
                         "its own ports and folder: make demo DEMO_PORT=8100 (which uses var/demo-8100)") from None
    return lock


def main() -> int:
    base = Path(os.environ.get("FEDWEB_DATA_DIR", "var/demo")).resolve()
    web, proxy = demo_ports()
    bank = DemoSite(base, "bank", "Demo Bank", web, proxy, "bank")
    provider = DemoSite(base, "provider", "Demo Data Provider", web + 1, proxy + 1, "provider")
    sites = (bank, provider)
    # Ports first, before a file is written: a busy one is named with what it was for.
    busy = busy_ports({**bank.ports, **provider.ports})
    if busy:
        which = ("port " + busy[0] + " is") if len(busy) == 1 else ("ports " + ", ".join(busy) + " are")
        raise SystemExit(f"The demo cannot start: {which} in use by another program. "
                         "Stop that program, or start the demo on other ports, e.g. make demo DEMO_PORT=8100 "
                         "(its own folder var/demo-8100; the proxies then use 7543 and 7544, or set DEMO_PROXY_PORT).")
    lock = hold_folder(base)  # noqa: F841 (held until the process ends)
    state_file = base / "demo.json"
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
    first_run = not (base / ".paired").exists()
    ports = {"web": web, "proxy": proxy}
    if not first_run and state.get("ports", {"web": 8000, "proxy": 7443}) != ports:
        was = state.get("ports", {"web": 8000, "proxy": 7443})
        raise SystemExit(f"The demo in {base} was set up with DEMO_PORT={was['web']} DEMO_PROXY_PORT={was['proxy']} "
                         "(the two sites know each other's proxy by its port). Start it with those, use another "
                         "DEMO_DIR for these ports, or start afresh with make clean-demo.")
    fingerprint = preparation_fingerprint()
    if first_run or state.get("prepared") != fingerprint:
        print("Preparing the two demo sites (the first run takes a minute)…", flush=True)
        for site in sites:
            site.prepare()
    if first_run:
        pair(bank, provider)
    try:
        for site in sites:
            site.start()
        for site in sites:
            site.wait_listening()
        if first_run:
            bank.manage("demo_project", "invite", "--partner", provider.party_id)
            wait_for(provider, "status", "invited")
            provider.manage("demo_project", "accept")
            wait_for(bank, "status", "active")
            for site in sites:
                site.manage("demo_project", "authorise")
            (base / ".paired").write_text("ok")
        state_file.write_text(json.dumps({"ports": ports, "prepared": fingerprint}), encoding="utf-8")
        print(
            "\n"
            f"  Demo Bank (holds the labels):   http://127.0.0.1:{bank.web_port}/      admin / {bank.password}\n"
            f"  Demo Data Provider:             http://127.0.0.1:{provider.web_port}/      admin / {provider.password}\n"
            f"  The two sites are paired (proxies on 127.0.0.1:{bank.proxy_port} and :{provider.proxy_port}, mutual TLS) and share the\n"
            "  accepted project “Breast cancer — joint model (demo)” with one table authorised on each side.\n"
            f"  Data: {base}   Stop with Ctrl-C.\n",
            flush=True,
        )
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        while not stop["now"] and all(p.poll() is None for site in sites for p in site.processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for site in sites:
            site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
