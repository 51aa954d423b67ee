"""An active project with one partner, an authorised table of ours and an announced table of the
partner's: what the job pages, forms and estimates are tested against."""

from __future__ import annotations

from fedweb.proxy import pki
from projects import pairing, services
from projects.models import Project, ProjectMember, ProjectStatus, RemoteTable

PARTNER_TABLE = "11111111-1111-1111-1111-111111111111"
OURS_CSV = "id,y,x1,x2\n" + "".join(f"{i:04d},{i % 2},{i * 0.5},{i % 7}\n" for i in range(200))


def job_project(*, admin, members, make_dataset, settings, csv: str = OURS_CSV, partner_rows: int = 180,
                partner_features: int = 3):
    """(project, our dataset): this site ("site-1") holds the labels; the partner is "telco"."""
    settings.SITE_PARTY_ID = "site-1"
    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    project = Project.objects.create(name="Credit risk", purpose="x", partner=partner, initiator="site-1",
                                     label_holder="site-1", status=ProjectStatus.ACTIVE)
    for user in members:
        ProjectMember.objects.create(project=project, user=user)
    dataset = make_dataset(members[0], csv, name="Applicants")
    services.authorise_table(user=admin, project=project, dataset=dataset,
                             policy={"min_set_size": 10, "runs_per_day": 9, "partner_may_receive": True})
    columns = [{"name": "id", "role": "id"}] + [{"name": f"z{i}", "role": "feature"} for i in range(partner_features)]
    RemoteTable.objects.create(project=project, table_id=PARTNER_TABLE, name="Usage", row_count=partner_rows,
                               columns=columns)
    return project, dataset
