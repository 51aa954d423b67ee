"""Load the sample tables into this site, owned by the given user (idempotent by name)."""

import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandError

from datasets import services
from datasets.models import Dataset
from datasets.tasks import validate_dataset
from engine.samples import breast_cancer_split, credit_table
from fedweb.sitedata import SiteCommand


class Command(SiteCommand):
    help = "Load the demo tables (breast cancer split by columns, a 100k-row credit table)."

    def add_arguments(self, parser):
        parser.add_argument("--owner", required=True, help="user name that will own the tables")
        parser.add_argument("--credit-rows", type=int, default=100_000)
        parser.add_argument(
            "--side", choices=["all", "bank", "provider"], default="all",
            help="bank: the label holder's tables; provider: the feature provider's table",
        )

    def handle(self, *args, owner, credit_rows, side, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"no user named {owner!r}")
        guest, host = breast_cancer_split()
        tables = {}
        if side in ("all", "bank"):
            tables["Breast cancer — label holder (bank)"] = ("breast_cancer_guest.csv", guest, "Label `y` and 10 features; ids with leading zeros.")
        if side in ("all", "provider"):
            tables["Breast cancer — feature provider"] = ("breast_cancer_host.csv", host, "20 more features for the same ids.")
        if side in ("all", "bank"):
            tables["Credit applications (100k)"] = ("credit.csv", credit_table(credit_rows), "Generated credit-style table with a default label.")
        with tempfile.TemporaryDirectory() as tmp:
            for name, (filename, frame, description) in tables.items():
                if Dataset.objects.alive().filter(owner=user, name=name).exists():
                    self.stdout.write(f"  {name}: already loaded")
                    continue
                path = Path(tmp) / filename
                frame.to_csv(path, index=False)
                upload = SimpleUploadedFile(filename, path.read_bytes(), content_type="text/csv")
                dataset = services.upload(user=user, uploaded_file=upload, name=name, description=description, id_column="id")
                validate_dataset(str(dataset.pk))  # run now; the queued copy finds it done
                dataset.refresh_from_db()
                self.stdout.write(f"  {name}: {dataset.get_status_display()}, {dataset.row_count} rows")
