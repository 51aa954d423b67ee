"""Is this process pointed at a site? And the folders a site's processes need.

Reading the settings creates nothing. A site's folders and its embedded secret key are made
when the site is created (``manage.py migrate``) or when one of its processes starts on it
(:func:`prepare_site_files`). A management command that needs a site's database inherits
:class:`SiteCommand`, which first checks — without opening the database through Django,
since opening a SQLite file creates it — that there is a migrated database, and otherwise
says in one line where it looked and how to point the command at a site.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, Error as DatabaseError, connections
from django.utils.translation import gettext as _

MIGRATIONS_TABLE = "django_migrations"


# --- The site's folders ---------------------------------------------------------------

def site_folders() -> list[Path]:
    folders = [Path(settings.DATA_DIR), Path(settings.ARTIFACT_DIR), Path(settings.UPLOAD_TMP_DIR)]
    if settings.CELERY_BROKER_URL == "filesystem://":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[key]) for key in ("data_folder_in", "processed_folder", "control_folder")]
    return folders


def prepare_site_files() -> None:
    """Make the site's folders and, in embedded mode, save the secret key (idempotent)."""
    for folder in site_folders():
        folder.mkdir(parents=True, exist_ok=True)
    key_file = getattr(settings, "SECRET_KEY_FILE", None)
    if key_file is None:
        return
    key_file = Path(key_file)
    if key_file.exists():
        # Saved by another process of the site, maybe after this one read the settings.
        settings.SECRET_KEY = key_file.read_text(encoding="utf-8").strip()
        return
    # Written whole under another name, then linked into place: a process of the site starting
    # at the same moment either finds no key file or a complete one, never an empty one.
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(settings.SECRET_KEY)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, key_file)
        except FileExistsError:
            # Another process of the site saved its key first: use that one, as every process must.
            settings.SECRET_KEY = key_file.read_text(encoding="utf-8").strip()
    finally:
        draft.unlink(missing_ok=True)


# --- Is there a site database? ---------------------------------------------------------

def _has_migrations_table_in_file(path: Path) -> bool:
    # Read-only: a file that is not a site is never changed (nor created, nor given a journal).
    uri = f"file:{quote(str(path))}?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (MIGRATIONS_TABLE,)).fetchone() is not None
    finally:
        db.close()


def _has_migrations_table(connection) -> bool:
    with connection.cursor() as cursor:
        return MIGRATIONS_TABLE in connection.introspection.table_names(cursor)


def database_problem(command: str, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """``None`` when ``using`` is a migrated site database, else the one line to print."""
    connection = connections[using]
    example = f"python manage.py {command}"
    if connection.vendor == "sqlite" and connection.connection is None and not connection.is_in_memory_db():
        path = Path(connection.settings_dict["NAME"])
        if not path.is_file():
            reason = _("no %(file)s there") % {"file": path.name}
        else:
            try:
                reason = None if _has_migrations_table_in_file(path) else (
                    _("%(file)s was never migrated") % {"file": path.name})
            except sqlite3.Error as exc:
                reason = _("%(file)s cannot be read: %(error)s") % {"file": path.name, "error": exc}
        if reason is None:
            return None
        return _(
            "No FedWeb site database in %(folder)s (%(reason)s): set FEDWEB_DATA_DIR to a site's data folder, "
            "e.g. FEDWEB_DATA_DIR=var/demo/bank %(example)s"
        ) % {"folder": path.parent, "reason": reason, "example": example}
    try:
        # A server database (or one already open): connecting creates nothing.
        if _has_migrations_table(connection):
            return None
        reason = _("it was never migrated")
    except DatabaseError as exc:
        reason = _("cannot connect: %(error)s") % {"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0]}
    where = settings_dict_label(connection.settings_dict)
    return _(
        "No FedWeb site database in %(database)s (%(reason)s): set DATABASE_URL to a site's database, "
        "e.g. DATABASE_URL=postgres://user@host:5432/fedweb %(example)s"
    ) % {"database": where, "reason": reason, "example": example}


def settings_dict_label(settings_dict: dict) -> str:
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or "5432"
    return _("PostgreSQL database %(name)s on %(host)s:%(port)s") % {
        "name": settings_dict.get("NAME"), "host": host, "port": port}


def require_site_database(command: str, using: str = DEFAULT_DB_ALIAS) -> None:
    problem = database_problem(command, using)
    if problem:
        raise CommandError(problem)


class SiteCommand(BaseCommand):
    """A command that works on this site's database: refused in one line where there is none."""

    def execute(self, *args, **options):
        # Before Django's system checks or anything else can open (and so create) the database.
        require_site_database(self.__module__.rsplit(".", 1)[-1])
        prepare_site_files()
        return super().execute(*args, **options)
