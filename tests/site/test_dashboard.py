"""The home page shows what needs the signed-in user, each block only when it has something, and only
from the projects the user may see."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import formats, timezone

from frontend import dashboard
from jobs.models import Job, JobStatus, Task, TaskStatus
from projects import services as project_services
from projects.models import Project, ProjectStatus, RemoteTable
from tests.site.test_job_lists import EVALUATION, make_job, site  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

CSV = "id,y,x\n" + "".join(f"{i},{i % 2},{i}\n" for i in range(20))


def home(client_as, user) -> str:
    response = client_as(user).get("/")
    assert response.status_code == 200
    return response.content.decode()


def block(body: str, name: str) -> str:
    """The HTML of one block of the home page ("" when the page does not show it)."""
    match = re.search(rf'<section class="[^"]*" data-testid="dash-{name}">(.*?)</section>', body, re.S)
    return match.group(1) if match else ""


def test_with_nothing_to_do_the_page_says_so_and_keeps_the_links(site, client_as, alice, vera):
    for user in (alice, vera):
        body = home(client_as, user)
        assert 'data-testid="dash-empty"' in body and "Nothing needs you right now." in body
        for name in ("running", "decisions", "recent", "expiring"):
            assert block(body, name) == ""
        assert 'href="/datasets/"' in body and 'href="/projects/"' in body and 'href="/models/"' in body


def test_a_running_job_shows_its_progress_and_the_stage_of_its_running_task(site, client_as, alice, vera, bob):
    ours, _other = site
    job = make_job(ours, "Credit LR", by=alice, status=JobStatus.RUNNING,
                   tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 10}),
                          ("hetero_lr", TaskStatus.RUNNING, None, 0.5, "epoch 5 of 10"),
                          ("evaluation", TaskStatus.WAITING, None)])
    # The partner's half is not this site's progress.
    Task.objects.create(job=job, node="lr", site=Task.PARTNER, party="telco", role="host", component="hetero_lr",
                        version="1.0.0", status=TaskStatus.RUNNING, progress=0.0)
    for user in (alice, vera):
        running = block(home(client_as, user), "running")
        assert f'href="/jobs/{job.pk}/"' in running and "Credit LR" in running
        assert 'value="0.500"' in running and "50%" in running  # (1 + 0.5 + 0) / 3
        assert "lr: epoch 5 of 10" in running
    assert block(home(client_as, bob), "running") == ""


def test_a_job_waiting_for_the_partner_to_accept_it_is_shown_as_under_way(site, client_as, alice):
    ours, _other = site
    job = make_job(ours, "Just sent", by=alice, status=JobStatus.PENDING, tasks=[("psi", TaskStatus.WAITING, None)])
    running = block(home(client_as, alice), "running")
    assert f'href="/jobs/{job.pk}/"' in running and "Waiting for the partner to accept" in running


def test_when_only_the_partner_runs_the_stage_says_it_is_at_the_partner(site, alice):
    ours, _other = site
    job = make_job(ours, "Their turn", by=alice, status=JobStatus.RUNNING,
                   tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 10})])
    Task.objects.create(job=job, node="binning", site=Task.PARTNER, party="telco", role="host", component="hetero_binning",
                        version="1.0.0", status=TaskStatus.RUNNING, stage="encrypting")
    [item], more = dashboard.running_jobs(alice)
    assert item.at_partner and item.stage == "binning: encrypting" and item.progress == 1.0 and not more


def test_a_partners_job_waiting_for_approval_is_offered_to_admins_only(site, client_as, admin, alice):
    ours, _other = site
    job = make_job(ours, "Their PSI", partner_user="zhang", status=JobStatus.APPROVAL, template="psi")
    decisions = block(home(client_as, admin), "decisions")
    assert "Their PSI" in decisions and f'href="/jobs/{job.pk}/"' in decisions and "Review and approve" in decisions
    assert block(home(client_as, alice), "decisions") == ""


def test_a_job_paused_at_a_gate_is_offered_to_whoever_decides(site, client_as, alice, vera, bob):
    ours, _other = site
    job = make_job(ours, "Gated LR", by=alice, status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(status="paused")  # a plain string: the status may be new
    decisions = block(home(client_as, alice), "decisions")
    assert "Gated LR" in decisions and f'href="/jobs/{job.pk}/"' in decisions
    assert block(home(client_as, vera), "decisions") == ""  # a viewer decides nothing
    assert "Gated LR" not in home(client_as, bob)


def test_an_invitation_is_offered_to_admins_with_its_link(site, client_as, admin, alice):
    ours, _other = site
    invited = Project.objects.create(name="Fraud", purpose="x", partner=ours.partner, initiator="telco",
                                     label_holder="site-1", status=ProjectStatus.INVITED)
    decisions = block(home(client_as, admin), "decisions")
    assert "Fraud" in decisions and f'href="/projects/{invited.pk}/"' in decisions
    assert "Fraud" not in home(client_as, alice)


def test_recently_finished_jobs_show_their_result_or_their_error(site, client_as, alice):
    ours, _other = site
    now = timezone.now()
    make_job(ours, "Model", by=alice, created=now - dt.timedelta(days=2),
             tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 99}),
                    ("evaluation", TaskStatus.SUCCEEDED, EVALUATION)])
    make_job(ours, "Overlap", by=alice, template="psi", created=now - dt.timedelta(days=1),
             tasks=[("psi", TaskStatus.SUCCEEDED, {"intersection_size": 4321})])
    make_job(ours, "Broken", by=alice, status=JobStatus.FAILED, error="The partner's site did not answer.\ndetails")
    make_job(ours, "Last month", by=alice, created=now - dt.timedelta(days=30))
    make_job(ours, "Still going", by=alice, status=JobStatus.RUNNING)
    recent = block(home(client_as, alice), "recent")
    assert recent.index("Broken") < recent.index("Overlap") < recent.index("Model")  # newest first
    assert "AUC 0.812 · KS 0.457" in recent and "4,321 rows in common" in recent
    assert "The partner&#x27;s site did not answer.</span>" in recent and "details</span>" not in recent
    assert 'data-status="failed">Failed</span>' in recent and 'data-status="succeeded">Succeeded</span>' in recent
    assert "Last month" not in recent and "Still going" not in recent


def test_at_most_ten_recent_jobs(site, alice):
    ours, _other = site
    for i in range(12):
        make_job(ours, f"Run {i}", by=alice, created=timezone.now() - dt.timedelta(hours=i))
    assert [row.job.name for row in dashboard.recent_jobs(alice, timezone.now())] == [f"Run {i}" for i in range(10)]


def test_tables_whose_authorisation_ends_soon(site, client_as, admin, alice, bob, make_dataset):
    ours, _other = site
    now = timezone.now()
    soon = make_dataset(alice, CSV, name="Customers")
    later = make_dataset(alice, CSV, name="Archive")
    project_services.authorise_table(user=admin, project=ours, dataset=soon, expires_at=now + dt.timedelta(days=5))
    project_services.authorise_table(user=admin, project=ours, dataset=later, expires_at=now + dt.timedelta(days=40))
    RemoteTable.objects.create(project=ours, table_id="t1", name="Telco phones", expires_at=now + dt.timedelta(days=2))
    RemoteTable.objects.create(project=ours, table_id="t2", name="Telco old", expires_at=now - dt.timedelta(days=1))
    expiring = block(home(client_as, alice), "expiring")
    assert expiring.index("Telco phones") < expiring.index("Customers")  # soonest first
    assert "Archive" not in expiring and "Telco old" not in expiring
    assert formats.date_format(timezone.localtime(now + dt.timedelta(days=5)), "SHORT_DATE_FORMAT") in expiring
    assert f'href="/projects/{ours.pk}/"' in expiring
    assert block(home(client_as, bob), "expiring") == ""


def test_bob_sees_nothing_of_alices_project(site, client_as, admin, alice, bob, make_dataset):
    ours, _other = site
    make_job(ours, "Secret running", by=alice, status=JobStatus.RUNNING)
    make_job(ours, "Secret done", by=alice)
    gated = make_job(ours, "Secret gate", by=alice, status=JobStatus.RUNNING)
    Job.objects.filter(pk=gated.pk).update(status="paused")
    RemoteTable.objects.create(project=ours, table_id="t1", name="Secret table",
                               expires_at=timezone.now() + dt.timedelta(days=2))
    body = home(client_as, bob)
    assert "Secret" not in body and "Credit risk" not in body
    assert "Nothing needs you right now." in body
