"""The model registry's pages: a project's models, one version and its publication, versions side by
side, and the reconciliation of online scoring with the partner."""

from __future__ import annotations

import datetime as dt
import html
import uuid

import pytest
from django.utils import timezone

from engine.components.hetero_lr.model import build_half
from jobs import artifacts, ledger, templates
from jobs.models import Job, JobStatus, Model, ScoringOutcome, ScoringRequest, ServingTable, Task, TaskStatus, model_id
from tests.site.job_scene import PARTNER_TABLE, job_project

pytestmark = pytest.mark.django_db


def report(auc: float, ks: float) -> dict:
    return {"task": "binary", "n": 40, "n_positive": 20, "n_negative": 20, "auc": auc, "ks": ks,
            "ks_threshold": 0.5, "average_precision": 0.7,
            "roc": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.7, 1.0], "thresholds": [1.0, 0.5, 0.0]}}


def make_version(project, dataset, *, by, number: int, learning_rate: float, auc: float, ks: float,
                 name="Credit risk LR") -> Model:
    """A finished LR job and the Model row its trainer left, with an evaluation at this site."""
    spec = templates.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE)
    job = Job.objects.create(project=project, name=f"{name} {number}", template="lr", spec=spec, initiator="site-1",
                             created_by=by, created_by_name=by.username, status=JobStatus.SUCCEEDED,
                             model_name=name, model_number=number)
    Task.objects.create(job=job, node="lr", site=Task.OURS, party="site-1", role="guest", component="hetero_lr",
                        version="1.0.0", status=TaskStatus.SUCCEEDED)
    Task.objects.create(job=job, node="lr", site=Task.PARTNER, party="telco", role="host", component="hetero_lr",
                        version="1.0.0", status=TaskStatus.SUCCEEDED)
    Task.objects.create(job=job, node="evaluation", site=Task.OURS, party="site-1", role="guest",
                        component="evaluation", version="1.0.0", status=TaskStatus.SUCCEEDED,
                        metrics={"final": {"data": report(auc, ks)}})
    half = artifacts.store("model", build_half(role="guest", model_id=str(model_id(job.pk, "lr")), params={},
                                               id_column="id", features=["x1", "x2"], weights=[1.0, 2.0],
                                               exponents=[-20, -20], intercept=0.5, feature_bits=32, peer_weights=3,
                                               training={}, label_column="y"))
    return Model.objects.create(id=model_id(job.pk, "lr"), project=project, job=job, node="lr",
                                component="hetero_lr", version="1.0.0", role="guest", artifact=half, name=name,
                                number=number, params={"learning_rate": learning_rate, "max_epochs": 10,
                                                       "shuffle": True, "early_stopping": "none"})


@pytest.fixture
def scene(admin, alice, vera, make_dataset, settings):
    project, dataset = job_project(admin=admin, members=[alice, vera], make_dataset=make_dataset, settings=settings)
    first = make_version(project, dataset, by=alice, number=1, learning_rate=0.1, auc=0.81234, ks=0.4567)
    second = make_version(project, dataset, by=alice, number=2, learning_rate=0.2, auc=0.85, ks=0.5)
    return project, dataset, first, second


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def post(client, url, data=None) -> list[str]:
    response = client.post(url, data or {}, follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


# --- A project's models -------------------------------------------------------------------------

def test_the_project_page_links_to_its_models_and_the_list_shows_every_version(scene, alice, client_as):
    project, _dataset, first, second = scene
    assert f"/projects/{project.pk}/models/" in page(client_as(alice), f"/projects/{project.pk}/")
    text = page(client_as(alice), f"/projects/{project.pk}/models/")
    assert "Credit risk LR · v1" in text and "Credit risk LR · v2" in text
    assert "Logistic regression" in text and "Not published" in text
    assert "0.8123" in text and "0.4567" in text  # validation AUC and KS of v1
    assert f'name="ids" value="{first.pk}"' in text and f'value="{second.pk}"' in text
    assert text.index("· v2") < text.index("· v1")  # newest first


def test_archived_versions_are_behind_a_link(scene, alice, client_as):
    project, _dataset, first, _second = scene
    Model.objects.filter(pk=first.pk).update(archived_at=timezone.now())
    text = page(client_as(alice), f"/projects/{project.pk}/models/")
    assert "· v1" not in text and "Show archived versions (1)" in text
    shown = page(client_as(alice), f"/projects/{project.pk}/models/?archived=1")
    assert "· v1" in shown and "Archived" in shown


def test_another_projects_models_are_not_found(scene, bob, client_as):
    project, _dataset, first, _second = scene
    assert client_as(bob).get(f"/projects/{project.pk}/models/").status_code == 404
    assert client_as(bob).get(f"/models/{first.pk}/").status_code == 404


# --- One version ----------------------------------------------------------------------------------

def test_the_version_page_shows_lineage_settings_metrics_and_both_halves(scene, alice, client_as):
    _project, _dataset, first, _second = scene
    text = page(client_as(alice), f"/models/{first.pk}/")
    assert f"/jobs/{first.job_id}/" in text and "Credit risk LR 1" in text
    assert "Applicants" in text and "Usage" in text  # both tables by name
    assert "Learning rate" in text and "0.1" in text and "Shuffle" in text
    assert "Label holder" in text and "Feature holder" in text
    assert "Succeeded" in text  # the partner's half
    assert "0.8123" in text
    assert 'data-testid="chart-model-' in text and '"ROC curve"' in text
    assert 'data-action="publish"' in text and 'data-action="archive"' in text
    assert 'data-testid="endpoint"' not in text  # not published
    assert 'data-testid="serving-form"' not in text  # analysts do not register serving tables


def test_publishing_asks_the_partner_and_withdrawing_clears_it(scene, alice, client_as):
    _project, _dataset, first, _second = scene
    client = client_as(alice)
    said = post(client, f"/models/{first.pk}/publish/")
    assert any("partner" in m for m in said)
    first.refresh_from_db()
    assert first.status == "requested" and first.consent_here_by == "alice"
    text = page(client, f"/models/{first.pk}/")
    assert "Waiting for the partner to confirm publication" in text and "published by alice" in text
    assert 'data-testid="withdraw"' in text
    post(client, f"/models/{first.pk}/unpublish/", {"reason": "wrong table"})
    first.refresh_from_db()
    assert first.status == "draft"
    from fedweb.audit.models import AuditEvent

    assert AuditEvent.objects.get(action="model_unpublish").details["reason"] == "wrong table"


def test_an_analyst_cannot_confirm_the_partners_request_and_an_admin_can(scene, alice, admin, client_as):
    _project, _dataset, first, _second = scene
    Model.objects.filter(pk=first.pk).update(consent_partner_at=timezone.now(), consent_partner_by="tom")
    text = page(client_as(alice), f"/models/{first.pk}/")
    assert "The partner asks to publish it" in text and "published by tom" in text
    assert 'data-action="confirm"' in text and "Only a site admin of this site can confirm." in text
    said = post(client_as(alice), f"/models/{first.pk}/publish/")
    assert said == ["The partner asks to publish this model: a site admin of this site confirms it."]
    first.refresh_from_db()
    assert first.status == "asked"
    said = post(client_as(admin), f"/models/{first.pk}/publish/")
    first.refresh_from_db()
    assert first.status == "published" and first.consent_here_by == "admin"
    assert any("confirmed" in m for m in said)


def test_a_viewer_is_refused_in_plain_words(scene, vera, client_as):
    _project, _dataset, first, _second = scene
    text = page(client_as(vera), f"/models/{first.pk}/")
    assert 'data-action="publish"' not in text
    assert post(client_as(vera), f"/models/{first.pk}/publish/") == ["Viewers cannot publish or archive models."]


def test_archiving_is_refused_while_published_and_a_version_is_restored(scene, alice, client_as):
    _project, _dataset, first, _second = scene
    Model.objects.filter(pk=first.pk).update(consent_here_at=timezone.now(), consent_partner_at=timezone.now())
    said = post(client_as(alice), f"/models/{first.pk}/archive/")
    assert said == ["Withdraw the publication before archiving the model."]
    first.refresh_from_db()
    assert first.archived_at is None
    post(client_as(alice), f"/models/{first.pk}/unpublish/")
    post(client_as(alice), f"/models/{first.pk}/archive/")
    first.refresh_from_db()
    assert first.status == "archived"
    text = page(client_as(alice), f"/models/{first.pk}/")
    assert 'data-action="restore"' in text and 'data-action="publish"' not in text
    post(client_as(alice), f"/models/{first.pk}/restore/")
    first.refresh_from_db()
    assert first.status == "draft"


def test_only_a_site_admin_registers_the_serving_table(scene, alice, admin, client_as, make_dataset):
    project, dataset, first, _second = scene
    said = post(client_as(alice), f"/models/{first.pk}/serving-table/", {"dataset": str(dataset.pk)})
    assert said == ["Only a site admin registers the table a model serves from."]
    assert not ServingTable.objects.filter(model=first).exists()
    text = page(client_as(admin), f"/models/{first.pk}/")
    assert 'data-testid="serving-form"' in text and f'value="{dataset.pk}"' in text
    unauthorised = make_dataset(alice, "id,x1,x2\n1,2,3\n", name="Elsewhere")
    assert f'value="{unauthorised.pk}"' not in text
    said = post(client_as(admin), f"/models/{first.pk}/serving-table/", {"dataset": str(unauthorised.pk)})
    assert said[0].startswith("Authorise the table into this project first")
    post(client_as(admin), f"/models/{first.pk}/serving-table/", {"dataset": str(dataset.pk)})
    assert ServingTable.objects.get(model=first).dataset == dataset
    assert "Applicants, registered by admin" in page(client_as(admin), f"/models/{first.pk}/")


def test_the_scoring_endpoint_is_shown_at_the_label_holder_once_published(scene, alice, client_as):
    _project, _dataset, first, _second = scene
    Model.objects.filter(pk=first.pk).update(consent_here_at=timezone.now(), consent_partner_at=timezone.now())
    raw = client_as(alice).get(f"/models/{first.pk}/").content.decode()
    assert 'data-testid="endpoint"' in raw
    assert f"/api/models/{first.pk}/score/" in raw
    assert "Bearer &lt;token&gt;" in raw and "<token>" not in raw
    Model.objects.filter(pk=first.pk).update(role="host")
    assert 'data-testid="endpoint"' not in client_as(alice).get(f"/models/{first.pk}/").content.decode()


# --- Versions side by side ---------------------------------------------------------------------

def test_two_versions_side_by_side(scene, alice, client_as):
    project, _dataset, first, second = scene
    text = page(client_as(alice), f"/projects/{project.pk}/models/compare/?ids={first.pk}&ids={second.pk}")
    assert "Credit risk LR · v1" in text and "Credit risk LR · v2" in text
    assert "0.8123" in text and "0.8500" in text
    assert text.count('data-best="1"') >= 2  # the better AUC and KS
    assert 'data-param="learning_rate" class="differs"' in text
    assert 'data-param="max_epochs" class="differs"' not in text
    assert 'data-testid="chart-compare-roc"' in text
    assert text.count('"label": "Credit risk LR \\u00b7 v') == 2 or text.count("Credit risk LR \\u00b7 v") >= 2


def test_comparing_fewer_than_two_versions_says_what_to_do(scene, alice, client_as):
    project, _dataset, first, _second = scene
    text = page(client_as(alice), f"/projects/{project.pk}/models/compare/?ids={first.pk}&ids=nonsense")
    assert 'data-testid="compare-too-few"' in text


# --- Reconciliation ---------------------------------------------------------------------------

def log(project, model, *, outcome=ScoringOutcome.SCORED, scored=3, at=None, sent=True, request_id=None):
    fields = {f.name for f in ScoringRequest._meta.get_fields()}
    extra = {"asked_partner": sent} if "asked_partner" in fields else {}
    return ScoringRequest.objects.create(request_id=request_id or uuid.uuid4(), project=project, model_id=model.pk,
                                         model_number=model.number, role="guest", at=at or timezone.now(), ids=3,
                                         scored=scored, outcome=outcome, **extra)


def theirs_of(entry, **changes) -> dict:
    row = {"request_id": str(entry.request_id), "at": entry.at.isoformat(), "model_number": entry.model_number,
           "ids": entry.ids, "scored": entry.scored, "outcome": entry.outcome, "detail": "", "sent": True}
    row.update(changes)
    return row


@pytest.fixture
def logged(scene):
    project, _dataset, first, _second = scene
    day = timezone.localdate()
    matched = log(project, first)
    timed_out = log(project, first, outcome=ScoringOutcome.TIMEOUT, scored=0)
    lost = log(project, first)
    partner_only = {"request_id": str(uuid.uuid4()), "at": timezone.now().isoformat(), "model_number": 1, "ids": 2,
                    "scored": 2, "outcome": ScoringOutcome.SCORED, "detail": "", "sent": True}
    theirs = [theirs_of(matched), theirs_of(timed_out, outcome=ScoringOutcome.SCORED, scored=3), partner_only]
    return project, first, day, theirs, (matched, timed_out, lost)


def test_the_ledger_matches_both_logs_by_request(logged):
    project, first, day, theirs, (_matched, timed_out, lost) = logged
    result = ledger.reconcile(project, first.pk, day, theirs=theirs)
    assert (result.ours, result.theirs, result.matched) == (3, 3, 1)
    statuses = {line["request_id"]: line["status"] for line in result.problems}
    assert statuses[str(timed_out.request_id)] == ledger.MISMATCH
    assert statuses[str(lost.request_id)] == ledger.ONLY_HERE
    assert statuses[theirs[2]["request_id"]] == ledger.ONLY_THERE


def test_the_reconciliation_page_lists_days_and_the_problems_of_one(logged, alice, client_as, monkeypatch):
    project, first, day, theirs, (_matched, timed_out, lost) = logged
    monkeypatch.setattr(ledger, "partner_entries", lambda *_args: (theirs, "UTC"))
    client = client_as(alice)
    text = page(client, f"/projects/{project.pk}/scoring/")
    assert "time zone" in text and "UTC" in text
    assert f'data-day="{day.isoformat()}" data-model="{first.pk}"' in text and "Credit risk LR · v1" in text
    text = page(client, f"/projects/{project.pk}/scoring/?model={first.pk}&day={day.isoformat()}")
    assert 'data-count="ours">3<' in text and 'data-count="theirs">3<' in text and 'data-count="matched">1<' in text
    assert "this site gave up waiting; the partner answered" in text
    assert "the partner never saw it" in text and "this site has no record of it" in text
    assert f'data-request="{lost.request_id}"' in text and f'data-request="{timed_out.request_id}"' in text
    assert "The partner did not answer in time" in text
    assert f"/projects/{project.pk}/scoring/csv/?model={first.pk}" in text


def test_the_partners_error_is_shown(logged, alice, client_as, monkeypatch):
    from fedweb.api.errors import ServiceError

    project, first, day, _theirs, _entries = logged

    def unreachable(*_args):
        raise ServiceError("The partner's site cannot be reached: down", code="partner_unreachable")

    monkeypatch.setattr(ledger, "partner_entries", unreachable)
    text = page(client_as(alice), f"/projects/{project.pk}/scoring/?model={first.pk}&day={day.isoformat()}")
    assert 'data-testid="partner-error"' in text and "cannot be reached: down" in text


def test_the_reconciliation_downloads_as_csv(logged, alice, client_as, monkeypatch):
    project, first, day, theirs, _entries = logged
    monkeypatch.setattr(ledger, "partner_entries", lambda *_args: (theirs, "UTC"))
    response = client_as(alice).get(f"/projects/{project.pk}/scoring/csv/?model={first.pk}&day={day.isoformat()}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("request_id,time,model_version") and "outcome_site-1" in lines[0]
    assert len(lines) == 1 + 4
    assert client_as(alice).get(f"/projects/{project.pk}/scoring/csv/?day=bad").status_code == 302


def test_a_malformed_choice_of_day_is_explained(logged, alice, client_as):
    project, first, _day, _theirs, _entries = logged
    response = client_as(alice).get(f"/projects/{project.pk}/scoring/?model={first.pk}&day=yesterday")
    assert response.status_code == 200
    assert "Choose a model and a day (YYYY-MM-DD) to reconcile." in [str(m) for m in response.context["messages"]]


# --- The project's setting ----------------------------------------------------------------------

def test_the_admin_lets_the_partner_publish_alone_from_the_job_settings(scene, admin, client_as):
    from fedweb.audit.models import AuditEvent

    project, _dataset, _first, _second = scene
    text = page(client_as(admin), f"/projects/{project.pk}/")
    assert "Publish the partner's models without our admin's confirmation" in text
    client_as(admin).post(f"/projects/{project.pk}/job-settings/",
                          {"gate_decider": "initiator", "auto_confirm_models": "on"})
    project.refresh_from_db()
    assert project.auto_confirm_models
    row = AuditEvent.objects.get(action="project_job_settings")
    assert row.details["before"]["auto_confirm_models"] is False and row.details["after"]["auto_confirm_models"]
    client_as(admin).post(f"/projects/{project.pk}/job-settings/", {"gate_decider": "initiator"})
    project.refresh_from_db()
    assert not project.auto_confirm_models


def test_days_are_counted_in_the_sites_time_zone(scene, settings):
    project, _dataset, first, _second = scene
    late = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(23, 30)))
    log(project, first, at=late)
    from jobs import model_pages

    rows = model_pages.scoring_days(project)
    assert rows[0]["day"] == timezone.localdate() and rows[0]["requests"] == 1


# --- In Chinese: the pages the route walk of test_translations.py cannot reach (they need a query) ------

def chinese_left(client, url) -> list[str]:
    from tests.site.test_translations import PageText, english_left

    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    parser = PageText("zh-hans")
    parser.feed(response.content.decode())
    data = {"Credit risk LR", "Credit risk", "Telco", "Applicants", "Usage", "alice", "site-1", "telco", "UTC",
            "Credit risk LR 1", "Credit risk LR 2", "lr", "Asia/Tokyo"}
    return english_left(parser.texts, data)


def test_the_compare_and_reconciliation_pages_read_in_chinese(logged, alice, client_as, monkeypatch, settings):
    project, first, day, theirs, _entries = logged
    settings.SITE_NAME = "测试站点"  # the operator's choice, not a text to translate
    second = Model.objects.exclude(pk=first.pk).get(project=project)
    alice.language = "zh-hans"
    alice.save(update_fields=["language"])
    monkeypatch.setattr(ledger, "partner_entries", lambda *_args: (theirs, "Asia/Tokyo"))
    client = client_as(alice)
    assert chinese_left(client, f"/projects/{project.pk}/models/compare/?ids={first.pk}&ids={second.pk}") == []
    assert chinese_left(client, f"/projects/{project.pk}/scoring/?model={first.pk}&day={day.isoformat()}") == []
    assert chinese_left(client, f"/projects/{project.pk}/models/?archived=1") == []


def test_the_site_wide_models_page_lists_each_projects_models_with_links(scene, alice, bob, client_as):
    page_text = page(client_as(alice), "/models/")
    assert "Credit risk LR" in page_text and "/projects/" in page_text and 'data-testid="project-models"' in page_text
    assert 'data-testid="no-models"' in page(client_as(bob), "/models/")  # not a member: nothing shown
