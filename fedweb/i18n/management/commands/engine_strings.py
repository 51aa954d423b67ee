"""``manage.py engine_strings``: regenerate ``fedweb/i18n/engine_text.py`` from the engine's components.

Run before ``makemessages`` (``make messages`` does both), so the texts the engine
declares in English reach the translation catalog. ``--check`` only says whether the
file is up to date (exit 1 if not).
"""

from django.core.management.base import BaseCommand, CommandError

from fedweb.i18n.catalog import MODULE_PATH, current_module, engine_texts


class Command(BaseCommand):
    help = "Write fedweb/i18n/engine_text.py: the engine components' texts, for makemessages."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Fail if the file is out of date; write nothing.")

    def handle(self, *args, check=False, **options):
        wanted = current_module()
        existing = MODULE_PATH.read_text(encoding="utf-8") if MODULE_PATH.exists() else ""
        if check:
            if existing != wanted:
                raise CommandError(f"{MODULE_PATH} is out of date: run `manage.py engine_strings` (or `make messages`)")
            self.stdout.write(f"{MODULE_PATH.name} is up to date")
            return
        if existing != wanted:
            MODULE_PATH.write_text(wanted, encoding="utf-8")
        self.stdout.write(f"{MODULE_PATH.name}: {len(engine_texts())} texts")
