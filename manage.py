#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Django's own commands that open the site's database. Ours inherit ``fedweb.sitedata.SiteCommand``;
# these get the same check here, before anything opens the database (opening a SQLite file
# creates it): where there is no site, one line says where it looked and how to point at one.
DJANGO_DATABASE_COMMANDS = {
    "changepassword", "clearsessions", "createcachetable", "createsuperuser", "dbshell", "dumpdata", "flush",
    "inspectdb", "loaddata", "remove_stale_contenttypes", "runserver", "showmigrations", "sqlflush", "sqlmigrate",
    "sqlsequencereset",
}


def _refuse_without_a_site(command: str) -> None:
    import django
    from django.conf import settings
    from django.utils import translation

    django.setup()
    from fedweb.sitedata import database_problem

    with translation.override(settings.LANGUAGE_CODE):
        problem = database_problem(command)
    if problem:
        sys.stderr.write(f"CommandError: {problem}\n")
        sys.exit(1)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")
    from django.core.management import execute_from_command_line

    if len(sys.argv) > 1 and sys.argv[1] in DJANGO_DATABASE_COMMANDS:
        _refuse_without_a_site(sys.argv[1])
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
