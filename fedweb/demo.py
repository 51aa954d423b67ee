"""``make demo``: one site on the embedded default, with an admin and sample data.

Runs migrations, creates the admin account once (the password is kept in the demo
data folder so later runs print the same one), loads the sample tables, then serves
the site with Daphne and runs a Celery worker beside it until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")
    os.environ.setdefault("SITE_NAME", "Demo bank")
    os.environ.setdefault("SITE_PARTY_ID", "demo-bank")
    port = os.environ.get("DEMO_PORT", "8000")
    data_dir = Path(os.environ.setdefault("FEDWEB_DATA_DIR", "var/demo")).resolve()
    os.environ["FEDWEB_DATA_DIR"] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    print("Preparing the database…", flush=True)
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    credentials = data_dir / "admin-password.txt"
    User = get_user_model()
    if not User.objects.filter(username="admin").exists():
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password, role="admin")
        credentials.write_text(password, encoding="utf-8")
        credentials.chmod(0o600)
    password = credentials.read_text(encoding="utf-8").strip() if credentials.exists() else "(set earlier)"
    print("Loading sample tables…", flush=True)
    call_command("load_demo_data", owner="admin")

    python = sys.executable
    env = dict(os.environ)
    processes = [
        subprocess.Popen([python, "-m", "celery", "-A", "fedweb", "worker", "--pool", "solo", "--loglevel", "WARNING"], env=env),
        subprocess.Popen([python, "-m", "daphne", "-b", "127.0.0.1", "-p", port, "fedweb.asgi:application"], env=env),
    ]
    print(
        "\n"
        f"  FedWeb demo site is running: http://127.0.0.1:{port}/\n"
        f"  Sign in as:  admin  /  {password}\n"
        f"  Data folder: {data_dir}\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )

    def stop(*_):
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
