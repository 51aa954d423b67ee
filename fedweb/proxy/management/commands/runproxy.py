"""``manage.py runproxy``: the site's gRPC proxy (mTLS) and its outbox sender."""

import logging
import signal
import threading

from django.core.management.base import CommandError

from fedweb.proxy import authz, pki, sender
from fedweb.proxy.server import build_server
from fedweb.sitedata import SiteCommand

log = logging.getLogger(__name__)


class Command(SiteCommand):
    help = "Serve this site's proxy: the only door for partner sites (gRPC over mutual TLS)."

    def add_arguments(self, parser):
        parser.add_argument("--address", default="0.0.0.0:7443", help="host:port to listen on (default 0.0.0.0:7443)")
        parser.add_argument("--no-sender", action="store_true", help="do not deliver queued events from this process")

    def handle(self, *args, address, no_sender, **options):
        try:
            pki.current()
        except pki.CertificateError as exc:
            raise CommandError(str(exc)) from None
        server, port = build_server(address)
        server.start()
        stop = threading.Event()
        threads = []
        if not no_sender:
            threads.append(threading.Thread(target=sender.run_forever, args=(stop,), name="outbox-sender", daemon=True))
        threads.append(threading.Thread(target=self._housekeeping, args=(stop,), name="proxy-housekeeping", daemon=True))
        for thread in threads:
            thread.start()

        def shutdown(*_):
            stop.set()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        self.stdout.write(f"proxy listening on port {port} (mutual TLS)", ending="\n")
        self.stdout.flush()
        stop.wait()
        server.stop(grace=5).wait()
        for thread in threads:
            thread.join(timeout=5)

    @staticmethod
    def _housekeeping(stop):
        from django.db import close_old_connections

        from jobs import scheduler

        ticks = 0
        while not stop.wait(10):
            ticks += 1
            try:
                close_old_connections()
                # Jobs: fail tasks whose worker vanished, start what a freed slot allows.
                scheduler.watchdog()
                scheduler.advance_all()
                if ticks % 6 == 0:
                    authz.forget_old_nonces()
            except Exception:  # housekeeping must never stop the proxy
                log.exception("proxy housekeeping failed; trying again")
