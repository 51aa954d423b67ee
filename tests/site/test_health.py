"""/healthz reports each dependency."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_artifacts_and_redis(client, settings):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["artifact_store"]["status"] == "ok"
    expected = "ok" if settings.REDIS_URL else "not configured"
    assert body["checks"]["redis"]["status"] == expected


def test_healthz_fails_when_the_artifact_store_is_not_writable(client, settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "missing" / "nowhere"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["artifact_store"]["status"] == "error"


def test_healthz_fails_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] == "error"
