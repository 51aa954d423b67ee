"""``manage.py demo_project``: the demo's project between the bank and the data provider.

Steps, run on the right site in order: ``invite`` (bank), ``accept`` (provider),
``authorise`` (each site authorises its breast-cancer table with a demo PSI policy).
Each step is idempotent.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from datasets.models import Dataset
from fedweb.sitedata import SiteCommand
from projects import services
from projects.models import Partner, Project, ProjectStatus

NAME = "Breast cancer — joint model (demo)"


class Command(SiteCommand):
    help = "Create, accept and fill the demo project (see the module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("step", choices=["invite", "accept", "authorise", "status"])
        parser.add_argument("--partner", help="party id of the other site (invite)")

    def handle(self, *args, step, partner, **options):
        admin = get_user_model().objects.get(username="admin")
        project = Project.objects.filter(name=NAME).first()
        if step == "invite":
            if project is None:
                other = Partner.objects.get(party_id=partner)
                project = services.create_project(
                    user=admin, partner=other, name=NAME, we_hold_labels=True,
                    purpose="Predict diagnoses with the bank's labels and the provider's extra measurements.",
                )
        elif project is None:
            raise CommandError("the demo project has not arrived yet")
        elif step == "accept" and project.status == ProjectStatus.INVITED:
            services.accept(user=admin, project=project, comment="Agreed for the demo.")
        elif step == "authorise" and project.is_active and not project.tables.exists():
            dataset = Dataset.objects.alive().filter(name__startswith="Breast cancer").first()
            services.authorise_table(
                user=admin, project=project, dataset=dataset,
                policy={"runs_per_day": 20, "min_set_size": 100, "min_overlap": 50, "partner_may_receive": True},
            )
        self.stdout.write(project.status if project else "none")
