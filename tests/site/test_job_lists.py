"""The job list across projects (filters, pages, what each persona sees) and a project's own jobs."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.utils import timezone

from fedweb.proxy import pki
from jobs import listing
from jobs.models import Job, JobStatus, Task, TaskStatus
from projects import pairing
from projects.models import Project, ProjectMember, ProjectStatus

pytestmark = pytest.mark.django_db

EVALUATION = {"data": {"task": "binary", "n": 40, "auc": 0.81234, "ks": 0.4567, "roc": {"fpr": [0, 1], "tpr": [0, 1]}}}


def make_partner(admin, party="telco", name="Telco"):
    _key, cert = pki.make_self_signed(party)
    return pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": party, "name": name,
                                  "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)


def make_project(partner, name, *members, status=ProjectStatus.ACTIVE):
    project = Project.objects.create(name=name, purpose="x", partner=partner, initiator="site-1",
                                     label_holder="site-1", status=status)
    for user in members:
        ProjectMember.objects.create(project=project, user=user)
    return project


def make_job(project, name, *, by=None, partner_user="", status=JobStatus.SUCCEEDED, template="lr", created=None,
             ran_for=None, error="", tasks=()):
    """A job as the scheduler leaves it; ``tasks`` are (component, status, final metrics[, progress, stage])."""
    now = timezone.now()
    job = Job.objects.create(
        project=project, name=name, template=template, spec={"format": "fedweb-job/1", "nodes": []},
        initiator="site-1" if by is not None else project.partner.party_id, created_by=by,
        created_by_name=by.get_username() if by is not None else partner_user, status=status, error=error,
    )
    created = created or now
    fields = {"created_at": created}
    if status not in (JobStatus.PENDING, JobStatus.APPROVAL, JobStatus.REFUSED):
        fields["accepted_at"] = created
        if status in JobStatus.terminal():
            fields["finished_at"] = created + (ran_for or dt.timedelta(minutes=3))
    Job.objects.filter(pk=job.pk).update(**fields)
    for component, task_status, final, *extra in tasks:
        progress = extra[0] if extra else None
        stage = extra[1] if len(extra) > 1 else ""
        Task.objects.create(
            job=job, node=component if component != "hetero_lr" else "lr", site=Task.OURS, party="site-1",
            role="guest", component=component, version="1.0.0", status=task_status,
            progress=progress if progress is not None else (1.0 if task_status in TaskStatus.done() else 0.0),
            stage=stage, metrics={"final": final} if final is not None else {},
        )
    job.refresh_from_db()
    return job


@pytest.fixture
def site(admin, alice, vera, settings):
    """Two projects with Telco: alice's (vera a member too) and one only the admin sees."""
    settings.SITE_PARTY_ID = "site-1"
    pki.create_site_certificate()
    partner = make_partner(admin)
    ours = make_project(partner, "Credit risk", alice, vera)
    other = make_project(partner, "Marketing")
    return ours, other


def names(response) -> list[str]:
    return [html.unescape(name) for name in re.findall(r'<td data-label="[^"]*" class="jobname"><a href="[^"]+">([^<]+)</a>', response.content.decode())]


def test_each_persona_sees_the_jobs_of_the_projects_it_may_see(site, client_as, admin, alice, bob, vera):
    ours, other = site
    make_job(ours, "LR on credit", by=alice)
    make_job(other, "Marketing PSI", by=admin, template="psi")
    assert set(names(client_as(admin).get("/jobs/"))) == {"LR on credit", "Marketing PSI"}
    assert names(client_as(alice).get("/jobs/")) == ["LR on credit"]
    assert names(client_as(vera).get("/jobs/")) == ["LR on credit"]
    page = client_as(bob).get("/jobs/")
    assert names(page) == [] and "Credit risk" not in page.content.decode()
    assert "No jobs yet" in page.content.decode()


def test_bob_cannot_reach_alices_project_through_the_project_filter(site, client_as, alice, bob):
    ours, _other = site
    make_job(ours, "LR on credit", by=alice)
    page = client_as(bob).get(f"/jobs/?project={ours.pk}")
    body = page.content.decode()
    assert page.status_code == 200
    assert names(page) == [] and "Credit risk" not in body and "LR on credit" not in body


def test_the_columns_say_the_kind_status_starter_duration_and_result_in_words(site, client_as, alice):
    ours, _other = site
    make_job(ours, "Model", by=alice, ran_for=dt.timedelta(minutes=65),
             tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 1234}),
                    ("evaluation", TaskStatus.SUCCEEDED, EVALUATION)])
    make_job(ours, "Overlap", partner_user="zhang", template="psi",
             tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 1234})])
    make_job(ours, "Broken", by=alice, status=JobStatus.FAILED, error="Column 'y' is missing.\nTraceback...")
    body = client_as(alice).get("/jobs/").content.decode()
    assert "Logistic regression model" in body and "Find the overlap (PSI only)" in body
    assert "AUC 0.812 · KS 0.457" in body
    assert "1,234 rows in common" in body
    assert "1 h 05 min" in body
    assert "Telco <span class=\"muted\">(zhang)</span>" in body
    assert 'data-status="failed">Failed</span>' in body
    assert "Column &#x27;y&#x27; is missing.</span>" in body and "Traceback...</span>" not in body


def test_the_status_filter(site, client_as, alice):
    ours, _other = site
    make_job(ours, "Done", by=alice)
    make_job(ours, "Running", by=alice, status=JobStatus.RUNNING)
    assert names(client_as(alice).get("/jobs/?status=running")) == ["Running"]
    assert set(names(client_as(alice).get("/jobs/?status="))) == {"Done", "Running"}


def test_the_template_filter(site, client_as, alice):
    ours, _other = site
    make_job(ours, "LR", by=alice, template="lr")
    make_job(ours, "PSI", by=alice, template="psi")
    make_job(ours, "Boost", by=alice, template="secureboost")
    page = client_as(alice).get("/jobs/?template=secureboost")
    assert names(page) == ["Boost"]
    assert "Gradient-boosted trees (SecureBoost)</option>" in page.content.decode()


def test_the_project_filter(site, client_as, admin):
    ours, other = site
    make_job(ours, "A", by=admin)
    make_job(other, "B", by=admin)
    assert names(client_as(admin).get(f"/jobs/?project={other.pk}")) == ["B"]


def test_the_started_by_filter_knows_our_users_and_the_partners(site, client_as, admin, alice):
    ours, _other = site
    make_job(ours, "Alice's", by=alice)
    make_job(ours, "Admin's", by=admin)
    make_job(ours, "Partner's", partner_user="zhang")
    page = client_as(alice).get("/jobs/")
    assert '<option value="zhang">zhang (Telco)</option>' in page.content.decode()
    assert names(client_as(alice).get("/jobs/?started_by=alice")) == ["Alice's"]
    assert names(client_as(alice).get("/jobs/?started_by=zhang")) == ["Partner's"]


def test_the_date_filters(site, client_as, alice):
    ours, _other = site
    now = timezone.now()
    make_job(ours, "Old", by=alice, created=now - dt.timedelta(days=30))
    make_job(ours, "Last week", by=alice, created=now - dt.timedelta(days=7))
    make_job(ours, "Today", by=alice, created=now)
    day = lambda d: timezone.localdate(now - dt.timedelta(days=d)).isoformat()  # noqa: E731
    assert set(names(client_as(alice).get(f"/jobs/?date_from={day(8)}"))) == {"Last week", "Today"}
    assert names(client_as(alice).get(f"/jobs/?date_to={day(8)}")) == ["Old"]
    assert names(client_as(alice).get(f"/jobs/?date_from={day(8)}&date_to={day(6)}")) == ["Last week"]
    backwards = client_as(alice).get(f"/jobs/?date_from={day(1)}&date_to={day(8)}").content.decode()
    assert "The end date is before the start date." in backwards


def test_pages_of_25_keep_the_filters(site, client_as, alice):
    ours, _other = site
    now = timezone.now()
    for i in range(30):
        make_job(ours, f"Run {i:02d}", by=alice, template="psi", created=now - dt.timedelta(minutes=i))
    make_job(ours, "Not PSI", by=alice, template="lr")
    first = client_as(alice).get("/jobs/?template=psi")
    body = first.content.decode()
    assert len(names(first)) == 25 and names(first)[0] == "Run 00"
    assert "30 jobs" in body and "Page 1 of 2" in body
    link = re.search(r'<a href="([^"]+)" rel="next">', body).group(1).replace("&amp;", "&")
    assert "template=psi" in link and "page=2" in link
    second = client_as(alice).get(f"/jobs/{link}")
    assert names(second) == [f"Run {i:02d}" for i in range(25, 30)]
    assert "rel=\"prev\"" in second.content.decode()


def test_a_status_newer_than_this_module_still_reads_in_words(site, alice):
    ours, _other = site
    job = make_job(ours, "Gate", by=alice, status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(status="paused")
    row = listing.rows(Job.objects.filter(pk=job.pk))[0]
    # Words whether JobStatus has the gate status yet or not.
    assert row.status and row.status != "paused" and row.tone == "waiting"


@pytest.mark.parametrize("final,words", [
    ({"auc": 0.7, "ks": 0.3}, "AUC 0.700 · KS 0.300"),
    ({"validate": {"auc": 0.75, "ks": 0.25}, "train": {"auc": 0.9, "ks": 0.5}}, "AUC 0.750 · KS 0.250"),
    ({"compare": {"task": "binary", "auc": 0.6}}, "AUC 0.600"),
    ({"data": {"task": "regression", "rmse": 1.5, "r2": 0.25}}, "RMSE 1.500 · R² 0.250"),
    ({}, ""), (None, ""), ({"data": "not a report"}, ""),
])
def test_the_headline_reads_flat_and_nested_evaluation_reports(final, words):
    assert listing.evaluation_words(final) == words


def test_duration_words():
    assert [listing.duration_words(s) for s in (None, 12, 240, 3900, 2 * 86400 + 3 * 3600)] == [
        "", "12 s", "4 min", "1 h 05 min", "2 d 3 h"]


# --- a project's own jobs ------------------------------------------------------------------------

def test_the_project_page_lists_its_jobs_with_new_job_and_see_all(site, client_as, alice, vera):
    ours, _other = site
    make_job(ours, "Model", by=alice, tasks=[("evaluation", TaskStatus.SUCCEEDED, EVALUATION)])
    body = client_as(alice).get(f"/projects/{ours.pk}/").content.decode()
    section = body[body.index('data-testid="project-jobs"'):]
    assert "Model</a>" in section and "AUC 0.812" in section
    assert f'href="/projects/{ours.pk}/jobs/new/"' in section and "New job" in section
    assert f'href="/jobs/?project={ours.pk}"' in section
    viewer = client_as(vera).get(f"/projects/{ours.pk}/").content.decode()
    assert 'data-testid="new-job"' not in viewer and "Model</a>" in viewer


def test_a_project_without_jobs_says_so(site, client_as, alice):
    ours, _other = site
    body = client_as(alice).get(f"/projects/{ours.pk}/").content.decode()
    section = body[body.index('data-testid="project-jobs"'):]
    assert "No jobs yet. Start the first one" in section and 'data-testid="all-jobs"' not in section


def test_a_model_job_never_shows_its_overlap_as_its_result(site, alice):
    ours, _other = site
    training = make_job(ours, "Training", by=alice, status=JobStatus.RUNNING, template="lr",
                        tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 500})])
    custom = make_job(ours, "Hand-written", by=alice, template="",
                      tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 500})])
    Job.objects.filter(pk=custom.pk).update(spec={"nodes": [{"id": "psi", "component": "psi"},
                                                            {"id": "evaluation", "component": "evaluation"}]})
    overlap = make_job(ours, "Overlap only", by=alice, template="",
                       tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 500})])
    rows = {row.job.name: row for row in listing.rows(Job.objects.filter(pk__in=[training.pk, custom.pk, overlap.pk]))}
    assert rows["Training"].headline == "" and rows["Hand-written"].headline == ""
    assert rows["Overlap only"].headline == "500 rows in common" and rows["Overlap only"].template == "Custom job"


def test_the_lists_render_for_chinese_readers(site, client_as, alice):
    ours, _other = site
    make_job(ours, "Model", by=alice, tasks=[("evaluation", TaskStatus.SUCCEEDED, EVALUATION)])
    client = client_as(alice)
    for path in ("/", "/jobs/", f"/projects/{ours.pk}/"):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200 and 'lang="zh-hans"' in response.content.decode()
