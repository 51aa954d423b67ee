"""Shared fixtures: the personas every test speaks about, and a way to make datasets.

Personas: ``admin`` (site admin), ``alice`` (analyst who owns datasets), ``grace``
(analyst holding a grant on alice's dataset), ``bob`` (analyst without one),
``vera`` (read-only viewer), and the anonymous client.
"""

from __future__ import annotations

import pytest

PASSWORD = "correct horse battery staple"


def _make_user(django_user_model, username, role):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, role=role)


@pytest.fixture(autouse=True)
def _isolated_site(settings, tmp_path):
    """Each test gets its own artifact store, an empty cache (login throttles) and the site's
    default language, whatever language an earlier test in the same process activated."""
    from django.core.cache import cache
    from django.utils import translation

    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.ARTIFACT_DIR.mkdir()
    cache.clear()
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, plus: end the connections other threads left open.

    Async views and consumers reach the database from asgiref's worker threads,
    whose connections outlive the tests, and PostgreSQL refuses to drop a
    database while sessions are on it. (SQLite has nothing to end.)
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture
def admin(db, django_user_model):
    return _make_user(django_user_model, "admin", "admin")


@pytest.fixture
def alice(db, django_user_model):
    return _make_user(django_user_model, "alice", "analyst")


@pytest.fixture
def grace(db, django_user_model):
    return _make_user(django_user_model, "grace", "analyst")


@pytest.fixture
def bob(db, django_user_model):
    return _make_user(django_user_model, "bob", "analyst")


@pytest.fixture
def vera(db, django_user_model):
    return _make_user(django_user_model, "vera", "viewer")


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _api_for(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def client_as():
    return _client_for


@pytest.fixture
def api_as():
    return _api_for


@pytest.fixture
def make_dataset(django_capture_on_commit_callbacks):
    """Upload CSV bytes as ``user`` and run validation; returns the refreshed dataset."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets import services

    def make(user, content: bytes | str, *, name="table", filename="table.csv", **options):
        if isinstance(content, str):
            content = content.encode("utf-8")
        upload = SimpleUploadedFile(filename, content, content_type="text/csv")
        with django_capture_on_commit_callbacks(execute=True):
            dataset = services.upload(user=user, uploaded_file=upload, name=name, **options)
        dataset.refresh_from_db()
        return dataset

    return make


@pytest.fixture
def granted_dataset(alice, grace, admin, make_dataset):
    """alice's ready dataset, with a live grant for grace."""
    from datasets import services

    dataset = make_dataset(alice, name="Alice secret scores", content="id,y,x1,city\n0012345,1,0.5,=HYPERLINK(1)\nNA,0,1.5,beijing\n007,1,-2,+cmd\n")
    services.grant(by=admin, dataset=dataset, user=grace)
    return dataset
