"""The OpenAPI schema validates and documents the shared error answers."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.stat().st_size > 0


def test_every_operation_documents_400_401_403_and_404(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404"):
                assert code in operation["responses"], f"{method.upper()} {path} lacks {code}"
    assert "/api/datasets/" in schema["paths"]


def test_the_schema_and_docs_pages_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_the_committed_schema_is_current(tmp_path):
    """docs/openapi.yaml is what `make schema` writes from today's code."""
    from django.conf import settings

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    committed = settings.BASE_DIR / "docs" / "openapi.yaml"
    assert out.read_text() == committed.read_text(), "docs/openapi.yaml is out of date: run `make schema`"
