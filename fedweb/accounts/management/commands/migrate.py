"""``manage.py migrate``: Django's, making the site's folders first.

Creating the database is what makes a folder a site, so this is where its folders (and the
embedded secret key) are made; the settings themselves create nothing (fedweb/sitedata.py).
"""

from django.core.management.commands.migrate import Command as DjangoMigrate

from fedweb.sitedata import prepare_site_files


class Command(DjangoMigrate):
    def execute(self, *args, **options):
        # Before the system checks, which open the database (and SQLite needs its folder).
        prepare_site_files()
        return super().execute(*args, **options)
