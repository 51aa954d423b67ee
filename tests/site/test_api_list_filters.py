"""The API's lists search, filter and order the same way, only within what the caller may see."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _day(text: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.fromisoformat(text + "T12:00:00"))


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


# --- Datasets ----------------------------------------------------------------------------

@pytest.fixture
def datasets(alice, bob, grace, admin):
    """alice's three tables (one granted to grace), bob's one: different names, tags, states, days."""
    from datasets.models import Dataset, DatasetGrant

    def make(owner, name, *, tags=(), status="ready", created="2026-03-01", description=""):
        dataset = Dataset.objects.create(owner=owner, name=name, description=description, tags=list(tags),
                                         status=status, storage_key=uuid.uuid4().hex)
        Dataset.objects.filter(pk=dataset.pk).update(created_at=_day(created))
        return dataset

    made = {
        "credit": make(alice, "Credit customers", tags=["bank", "risk"], created="2026-01-10",
                       description="Monthly loan book"),
        "churn": make(alice, "Churn", tags=["high-risk", "telecom"], status="failed", created="2026-02-20"),
        "loans": make(alice, "Loans 2025", tags=["bank"], status="uploaded", created="2026-03-05"),
        "bobs": make(bob, "Bob's credit lines", tags=["bank", "risk"], created="2026-01-10"),
    }
    DatasetGrant.objects.create(dataset=made["credit"], user=grace, granted_by=admin)
    return made


@pytest.mark.parametrize("query, expected", [
    ("name=credit", ["Bob's credit lines", "Credit customers"]),
    ("owner=bob", ["Bob's credit lines"]),
    ("status=failed", ["Churn"]),
    ("status=uploaded", ["Loans 2025"]),
    ("tag=risk", ["Bob's credit lines", "Credit customers"]),
    ("tag=telecom", ["Churn"]),
    ("tag=ris", []),
    ("created_after=2026-02-20", ["Churn", "Loans 2025"]),
    ("created_before=2026-01-10", ["Bob's credit lines", "Credit customers"]),
    ("created_after=2026-01-11&created_before=2026-02-20", ["Churn"]),
    ("search=loan", ["Credit customers", "Loans 2025"]),
    ("search=bob", ["Bob's credit lines"]),
])
def test_each_dataset_filter_narrows_an_admins_list(datasets, admin, api_as, query, expected):
    assert sorted(names(api_as(admin).get(f"/api/datasets/?{query}"))) == expected


def test_a_tag_matches_a_whole_tag_not_part_of_one(datasets, admin, api_as):
    """``risk`` is not ``high-risk``: the JSON list is searched by element, not as text."""
    assert "Churn" not in names(api_as(admin).get("/api/datasets/?tag=risk"))
    assert names(api_as(admin).get("/api/datasets/?tag=high-risk")) == ["Churn"]


def test_dataset_filters_combine(datasets, admin, api_as):
    api = api_as(admin)
    assert names(api.get("/api/datasets/?owner=alice&tag=bank&status=ready")) == ["Credit customers"]
    assert names(api.get("/api/datasets/?tag=bank&created_after=2026-02-01&search=loans")) == ["Loans 2025"]
    assert names(api.get("/api/datasets/?owner=bob&status=failed")) == []


def test_datasets_are_ordered_by_a_chosen_field_either_way(datasets, admin, api_as):
    api = api_as(admin)
    assert names(api.get("/api/datasets/?ordering=name")) == ["Bob's credit lines", "Churn", "Credit customers", "Loans 2025"]
    assert names(api.get("/api/datasets/?ordering=-created_at&owner=alice")) == ["Loans 2025", "Churn", "Credit customers"]


def test_filters_page_with_limit_and_offset(datasets, admin, api_as):
    body = api_as(admin).get("/api/datasets/?tag=bank&ordering=name&limit=2&offset=1").json()
    assert body["count"] == 3
    assert [row["name"] for row in body["results"]] == ["Credit customers", "Loans 2025"]


def test_a_filter_cannot_reveal_someone_elses_dataset(datasets, bob, grace, api_as):
    bob_api = api_as(bob)
    assert names(bob_api.get("/api/datasets/?owner=alice")) == []
    assert names(bob_api.get("/api/datasets/?search=credit")) == ["Bob's credit lines"]
    assert names(bob_api.get("/api/datasets/?tag=risk&ordering=-name")) == ["Bob's credit lines"]
    # grace sees alice's one granted table, and no filter shows her alice's others.
    grace_api = api_as(grace)
    assert names(grace_api.get("/api/datasets/?owner=alice")) == ["Credit customers"]
    assert names(grace_api.get("/api/datasets/?status=failed")) == []
    assert names(grace_api.get("/api/datasets/?tag=telecom")) == []


@pytest.mark.parametrize("query, parameter", [
    ("created_after=10/01/2026", "created_after"),
    ("created_before=yesterday", "created_before"),
    ("created_after=2026-13-01", "created_after"),
    ("status=done", "status"),
    ("ordering=owner__password", "ordering"),
    ("ordering=name,-secret", "ordering"),
])
def test_a_bad_dataset_filter_value_is_a_400_naming_the_parameter(datasets, admin, api_as, query, parameter):
    response = api_as(admin).get(f"/api/datasets/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert parameter in error["message"]
    assert list(error["details"]) == [parameter]
    assert error["details"][parameter][0]


def test_a_bad_filter_answers_in_the_callers_language(datasets, admin, api_as):
    response = api_as(admin).get("/api/datasets/?created_after=tomorrow", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "created_after" in error["message"] and "Bad value" not in error["message"]
    assert "Enter a valid date" not in error["details"]["created_after"][0]


def test_filters_apply_to_the_list_only_not_to_a_datasets_own_page(datasets, admin, api_as):
    response = api_as(admin).get(f"/api/datasets/{datasets['churn'].pk}/?status=ready&created_after=nonsense")
    assert response.status_code == 200
    assert response.json()["name"] == "Churn"


# --- Partners ----------------------------------------------------------------------------

@pytest.fixture
def partners(db):
    from projects.models import Partner

    def make(party_id, name, *, active=True, created="2026-03-01"):
        partner = Partner.objects.create(party_id=party_id, name=name, proxy_address="127.0.0.1:9", is_active=active)
        Partner.objects.filter(pk=partner.pk).update(created_at=_day(created))
        return partner

    return {
        "telco": make("telco", "Telco North", created="2026-01-05"),
        "telco-south": make("telco-south", "Telco South", active=False, created="2026-02-01"),
        "insurer": make("insurer", "Big Insurer", created="2026-03-01"),
    }


@pytest.mark.parametrize("query, expected", [
    ("name=telco", ["Telco North", "Telco South"]),
    ("party_id=telco", ["Telco North"]),
    ("status=active", ["Big Insurer", "Telco North"]),
    ("status=inactive", ["Telco South"]),
    ("created_after=2026-02-01", ["Big Insurer", "Telco South"]),
    ("created_before=2026-01-31", ["Telco North"]),
    ("search=south", ["Telco South"]),
    ("search=insurer", ["Big Insurer"]),
    ("name=telco&status=active&created_before=2026-02-01", ["Telco North"]),
])
def test_each_partner_filter_narrows_the_list(partners, alice, api_as, query, expected):
    assert sorted(names(api_as(alice).get(f"/api/partners/?{query}"))) == expected


def test_partners_are_ordered_by_a_chosen_field(partners, alice, api_as):
    assert names(api_as(alice).get("/api/partners/?ordering=-created_at")) == ["Big Insurer", "Telco South", "Telco North"]
    assert names(api_as(alice).get("/api/partners/?ordering=party_id")) == ["Big Insurer", "Telco North", "Telco South"]


@pytest.mark.parametrize("query, parameter", [
    ("status=paused", "status"),
    ("created_before=2026-02-30", "created_before"),
    ("ordering=proxy_address", "ordering"),
])
def test_a_bad_partner_filter_value_is_a_400_naming_the_parameter(partners, alice, api_as, query, parameter):
    response = api_as(alice).get(f"/api/partners/?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == [parameter]


# --- Projects ----------------------------------------------------------------------------

@pytest.fixture
def projects(partners, alice, bob):
    """Projects with two partners in several states; bob is a member of one only."""
    from projects.models import Project, ProjectMember

    def make(name, partner, status, *, created, purpose="Credit scoring", members=()):
        project = Project.objects.create(name=name, purpose=purpose, partner=partners[partner], initiator="site-1",
                                         label_holder="site-1", status=status)
        Project.objects.filter(pk=project.pk).update(created_at=_day(created))
        for user in members:
            ProjectMember.objects.create(project=project, user=user)
        return project

    return {
        "risk": make("Credit risk", "telco", "active", created="2026-01-10", members=[alice]),
        "fraud": make("Fraud", "telco", "pending", created="2026-02-10", purpose="Card fraud signals", members=[alice, bob]),
        "claims": make("Claims risk", "insurer", "invited", created="2026-03-10", members=[alice]),
        "old": make("Old credit pilot", "insurer", "revoked", created="2026-01-02"),
    }


@pytest.mark.parametrize("query, expected", [
    ("name=risk", ["Claims risk", "Credit risk"]),
    ("status=active", ["Credit risk"]),
    ("status=revoked", ["Old credit pilot"]),
    ("partner=insurer", ["Claims risk", "Old credit pilot"]),
    ("created_after=2026-02-10", ["Claims risk", "Fraud"]),
    ("created_before=2026-01-10", ["Credit risk", "Old credit pilot"]),
    ("search=card", ["Fraud"]),
    ("search=credit pilot", ["Old credit pilot"]),
    ("partner=telco&created_after=2026-02-01", ["Fraud"]),
    ("partner=insurer&status=invited&name=claims", ["Claims risk"]),
])
def test_each_project_filter_narrows_an_admins_list(projects, admin, api_as, query, expected):
    assert sorted(names(api_as(admin).get(f"/api/projects/?{query}"))) == expected


def test_projects_are_ordered_by_a_chosen_field(projects, admin, api_as):
    assert names(api_as(admin).get("/api/projects/?ordering=name&partner=telco")) == ["Credit risk", "Fraud"]
    assert names(api_as(admin).get("/api/projects/?ordering=status,-name")) == [
        "Credit risk", "Claims risk", "Fraud", "Old credit pilot"]


def test_a_project_filter_cannot_reveal_a_project_someone_is_not_in(projects, alice, bob, api_as):
    api = api_as(bob)
    assert names(api.get("/api/projects/")) == ["Fraud"]
    assert names(api.get("/api/projects/?status=active")) == []
    assert names(api.get("/api/projects/?partner=insurer")) == []
    assert names(api.get("/api/projects/?search=credit")) == []
    assert sorted(names(api_as(alice).get("/api/projects/?partner=insurer"))) == ["Claims risk"]


@pytest.mark.parametrize("query, parameter", [
    ("status=open", "status"),
    ("created_after=2026-1-1x", "created_after"),
    ("ordering=token_encrypted", "ordering"),
])
def test_a_bad_project_filter_value_is_a_400_naming_the_parameter(projects, admin, api_as, query, parameter):
    response = api_as(admin).get(f"/api/projects/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and parameter in error["message"]
    assert list(error["details"]) == [parameter]


def test_a_projects_own_page_and_actions_ignore_list_filters(projects, admin, api_as):
    """The pending project is found by its id even with a query string that would filter it out."""
    api = api_as(admin)
    fraud = projects["fraud"].pk
    assert api.get(f"/api/projects/{fraud}/?status=active").json()["name"] == "Fraud"
    assert api.get(f"/api/projects/{fraud}/members/?status=active&ordering=bogus").status_code == 200
    assert api.get("/api/partners/telco-south/?status=active").json()["name"] == "Telco South"


# --- Jobs and models ---------------------------------------------------------------------

@pytest.fixture
def jobs_and_models(projects):
    """Jobs in two projects, and model versions at each step of their publication."""
    from django.utils import timezone as tz

    from jobs.models import Artifact, Job, Model

    def job(name, project, status, *, created):
        made = Job.objects.create(project=projects[project], name=name, spec={}, initiator="site-1", status=status)
        Job.objects.filter(pk=made.pk).update(created_at=_day(created))
        return made

    made = {
        "lr": job("Credit LR", "risk", "succeeded", created="2026-01-12"),
        "sb": job("Credit SecureBoost", "risk", "failed", created="2026-02-12"),
        "psi": job("Fraud overlap", "fraud", "running", created="2026-02-15"),
    }
    artifact = Artifact.objects.create(id="0" * 64, kind="model", size_bytes=1)
    now = tz.now()

    def model(number, component, **consents):
        return Model.objects.create(id=uuid.uuid4(), project=projects["risk"], job=made["lr"], node="lr",
                                    component=component, version="1.0.0", role="guest", artifact=artifact,
                                    name="Credit LR", number=number, **consents)

    model(1, "hetero_lr")
    model(2, "hetero_lr", consent_here_at=now, consent_partner_at=now)
    model(3, "hetero_lr", consent_partner_at=now)
    model(4, "hetero_secureboost", consent_here_at=now)
    model(5, "hetero_lr", consent_here_at=now, consent_partner_at=now, archived_at=now)
    return made


def numbers(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["number"] for row in response.json()["results"])


@pytest.mark.parametrize("query, expected", [
    ("name=credit", ["Credit LR", "Credit SecureBoost"]),
    ("status=failed", ["Credit SecureBoost"]),
    ("created_after=2026-02-13", ["Fraud overlap"]),
    ("search=overlap", ["Fraud overlap"]),
    ("name=credit&created_before=2026-01-31", ["Credit LR"]),
])
def test_each_job_filter_narrows_the_list(jobs_and_models, admin, api_as, query, expected):
    assert sorted(names(api_as(admin).get(f"/api/jobs/?{query}"))) == expected


def test_jobs_filter_by_project_and_order_by_name(jobs_and_models, projects, admin, api_as):
    risk = projects["risk"].pk
    assert names(api_as(admin).get(f"/api/jobs/?project={risk}&ordering=-name")) == ["Credit SecureBoost", "Credit LR"]


def test_a_job_filter_cannot_reveal_a_project_someone_is_not_in(jobs_and_models, projects, bob, api_as):
    api = api_as(bob)  # a member of "Fraud" only
    assert names(api.get("/api/jobs/")) == ["Fraud overlap"]
    assert names(api.get(f"/api/jobs/?project={projects['risk'].pk}")) == []
    assert names(api.get("/api/jobs/?search=credit")) == []


@pytest.mark.parametrize("query, expected", [
    ("status=draft", [1]),
    ("status=published", [2]),
    ("status=asked", [3]),
    ("status=requested", [4]),
    ("status=archived", [5]),
    ("component=hetero_secureboost", [4]),
    ("name=credit&status=published", [2]),
])
def test_each_model_filter_matches_what_the_pages_show(jobs_and_models, admin, api_as, query, expected):
    from jobs.models import Model

    found = numbers(api_as(admin).get(f"/api/models/?{query}"))
    assert found == expected
    if query.startswith("status="):  # the query answers what Model.status says, version by version
        assert {m.number for m in Model.objects.all() if m.status == query.split("=")[1]} == set(expected)


@pytest.mark.parametrize("url, query, parameter", [
    ("/api/jobs/", "status=done", "status"),
    ("/api/jobs/", "project=not-a-uuid", "project"),
    ("/api/models/", "status=live", "status"),
    ("/api/models/", "ordering=artifact", "ordering"),
])
def test_a_bad_job_or_model_filter_is_a_400_naming_the_parameter(jobs_and_models, admin, api_as, url, query, parameter):
    response = api_as(admin).get(f"{url}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and list(error["details"]) == [parameter]


def test_current_keeps_each_datasets_current_version_as_the_page_lists_it(alice, admin, api_as):
    """v1 ready, v2 ready, v3 failed: v2 is current. A dataset with no ready version: its newest."""
    from datasets.models import Dataset
    from datasets.services import current_version, versions_of

    def version(name, number, status, lineage=None):
        return Dataset.objects.create(owner=alice, name=name, status=status, storage_key=uuid.uuid4().hex,
                                      lineage=lineage, version=number)

    first = version("Monthly book", 1, "ready")
    version("Monthly book", 2, "ready", first)
    version("Monthly book", 3, "failed", first)
    broken = version("Broken", 1, "failed")
    version("Broken", 2, "validating", broken)

    def listed(query):
        response = api_as(admin).get(f"/api/datasets/?{query}")
        assert response.status_code == 200, response.content
        return sorted((row["name"], row["version"]) for row in response.json()["results"])

    assert listed("current=true") == [("Broken", 2), ("Monthly book", 2)]
    assert listed("current=false") == [("Broken", 1), ("Monthly book", 1), ("Monthly book", 3)]
    assert listed("current=true&name=monthly") == [("Monthly book", 2)]
    for lineage in (first, broken):  # the same answer as the page's own rule
        assert current_version(list(versions_of(lineage))).version == 2
    assert api_as(admin).get("/api/datasets/?current=perhaps").status_code == 400
