"""``make demo``: two sites on this machine, paired, with sample data and an accepted project.

- **Demo Bank** (party ``bank``) holds labels: http://127.0.0.1:8000/
- **Demo Data Provider** (party ``provider``) holds extra features: http://127.0.0.1:8001/

Each site has its own data folder (database, files, keys) under ``var/demo/``, its own
web server, Celery worker and proxy (gRPC with mutual TLS on ports 7443 / 7444), all on
the embedded default (SQLite and local files). The first run prepares everything; later
runs reuse it (``make clean-demo`` starts afresh). Ctrl-C stops both sites.
"""

from __future__ import annotations

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
        self.data.mkdir(parents=True, exist_ok=True)
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
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("bootstrap_site", "--password-file", str(self.data / "admin-password.txt"))
        self.manage("load_demo_data", "--owner", "admin", "--side", self.side)

    @property
    def password(self) -> str:
        return (self.data / "admin-password.txt").read_text(encoding="utf-8").strip()

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
                    raise SystemExit(f"{self.name} did not start: see {self.data / 'site.log'}")
                time.sleep(0.2)

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


def main() -> int:
    base = Path(os.environ.get("FEDWEB_DATA_DIR", "var/demo")).resolve()
    web = int(os.environ.get("DEMO_PORT", "8000"))
    bank = DemoSite(base, "bank", "Demo Bank", web, 7443, "bank")
    provider = DemoSite(base, "provider", "Demo Data Provider", web + 1, 7444, "provider")
    sites = (bank, provider)
    first_run = not (base / ".paired").exists()
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
        print(
            "\n"
            f"  Demo Bank (holds the labels):   http://127.0.0.1:{bank.web_port}/      admin / {bank.password}\n"
            f"  Demo Data Provider:             http://127.0.0.1:{provider.web_port}/      admin / {provider.password}\n"
            "  The two sites are paired (proxies on 127.0.0.1:7443 and :7444, mutual TLS) and share the\n"
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
