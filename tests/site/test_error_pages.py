"""404, 403, 400, 500 and an expired form: the site's layout, a plain sentence and a way back.

Django's own pages are a bare "Not Found" with no menu; these show who is signed in, the
main navigation, a link to the section the address belongs to and to the home page. The
API keeps its JSON errors.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("the database went away")


def _bad(request):
    from django.core.exceptions import SuspiciousOperation

    raise SuspiciousOperation("a header no browser sends")


# A root URLconf with views that fail, and the site's handlers (see ``_failing_urls``).
urlpatterns = [path("boom/", _boom), path("bad/", _bad), path("api/boom/", _boom), path("", include("fedweb.urls"))]
handler400 = "fedweb.api.errors.handler400"
handler403 = "fedweb.api.errors.handler403"
handler404 = "fedweb.api.errors.handler404"
handler500 = "fedweb.api.errors.handler500"


@pytest.fixture
def _failing_urls(settings):
    settings.ROOT_URLCONF = __name__


def _assert_site_frame(response, status: int) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert 'data-testid="error-page"' in html and f'data-status="{status}"' in html
    assert 'href="/"' in html  # the way home
    return html


def test_a_missing_page_keeps_the_menu_and_leads_back_to_its_section(client_as, alice):
    html = _assert_site_frame(client_as(alice).get(f"/datasets/{uuid.uuid4()}/"), 404)
    assert 'class="mainnav"' in html and "alice" in html
    assert "Page not found" in html and "There is no page at this address" in html
    assert '<a class="button" href="/datasets/">Back to Datasets</a>' in html
    assert "matches the given query" not in html  # Django's text for developers stays out


def test_an_address_outside_any_section_offers_the_home_page_only(client_as, alice):
    html = _assert_site_frame(client_as(alice).get("/no-such-place/"), 404)
    assert "Back to" not in html


def test_a_signed_out_visitor_is_offered_to_sign_in(client):
    html = _assert_site_frame(client.get("/no-such-place/"), 404)
    assert 'href="/login/?next=/no-such-place/"' in html
    assert 'class="mainnav"' not in html


def test_a_refusal_says_why_in_the_site_layout(client_as, alice):
    html = _assert_site_frame(client_as(alice).get("/site-admin/users/"), 403)
    assert 'class="mainnav"' in html
    assert "You may not open this page" in html and "ask one of this site's admins" in html


def test_the_pages_speak_the_user_language(client_as, django_user_model):
    from tests.conftest import PASSWORD

    user = django_user_model.objects.create_user(username="li", password=PASSWORD, role="analyst", language="zh-hans")
    html = _assert_site_frame(client_as(user).get("/jobs/00000000-0000-0000-0000-000000000000/"), 404)
    assert "找不到页面" in html and "返回任务" in html


def test_an_expired_form_says_nothing_was_changed(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/language/", {"language": "zh-hans"})
    html = _assert_site_frame(response, 403)
    assert "Nothing was changed" in html
    alice.refresh_from_db()
    assert alice.language != "zh-hans"


def test_a_server_error_is_a_page_of_its_own_with_a_way_home(_failing_urls, alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    html = _assert_site_frame(client.get("/boom/"), 500)
    assert "Something went wrong" in html and "the database went away" not in html
    assert "site.css" in html


def test_a_bad_request_is_a_page_too(_failing_urls, client_as, alice):
    html = _assert_site_frame(client_as(alice).get("/bad/"), 400)
    assert "could not understand this request" in html


def test_the_api_keeps_answering_in_json(_failing_urls, api_as, alice):
    client = Client(raise_request_exception=False)
    assert client.get("/api/boom/").json()["error"]["code"] == "server_error"
    missing = api_as(alice).get(f"/api/datasets/{uuid.uuid4()}/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert Client().get("/api/nothing-here/").json()["error"]["code"] == "not_found"


def test_every_handler_answers_json_under_the_api():
    from django.test import RequestFactory

    from fedweb.api import errors

    request = RequestFactory().get("/api/x/")
    answers = [handler(request, None) for handler in (errors.handler400, errors.handler403, errors.handler404)]
    for answer in [*answers, errors.handler500(request)]:
        assert isinstance(answer, HttpResponse) and answer["Content-Type"] == "application/json"
        assert set(json.loads(answer.content)["error"]) == {"code", "message", "details"}
