"""The pages' language: the browser's for anonymous visitors, the user's own choice once signed in."""

import datetime as dt

import pytest
from django.conf import settings
from django.utils import formats, timezone, translation

from fedweb.accounts.services import set_language

pytestmark = pytest.mark.django_db

CHINESE_BROWSER = "zh-CN,zh;q=0.9,en;q=0.8"
ENGLISH_BROWSER = "en-GB,en;q=0.9"


def _lang(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("header", ["zh", "zh-CN", "zh-cn,zh;q=0.9", "zh-Hans-CN", "zh-SG", CHINESE_BROWSER])
def test_an_anonymous_chinese_browser_gets_simplified_chinese(client, header):
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE=header)
    assert _lang(response) == "zh-hans"
    assert response["Content-Language"] == "zh-hans"
    assert "登录" in response.content.decode()


def test_an_anonymous_english_browser_gets_english(client):
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER)
    assert _lang(response) == "en"
    assert "Sign in" in response.content.decode()


def test_a_users_language_beats_the_browser(alice, client_as):
    set_language(user=alice, language="zh-hans")
    response = client_as(alice).get("/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER)
    assert _lang(response) == "zh-hans" and response["Content-Language"] == "zh-hans"
    assert "退出登录" in response.content.decode()
    set_language(user=alice, language="en")
    response = client_as(alice).get("/", HTTP_ACCEPT_LANGUAGE=CHINESE_BROWSER)
    assert _lang(response) == "en" and "Sign out" in response.content.decode()


def test_a_user_who_never_chose_follows_the_browser(alice, client_as):
    assert alice.language == ""
    assert _lang(client_as(alice).get("/", HTTP_ACCEPT_LANGUAGE=CHINESE_BROWSER)) == "zh-hans"
    assert _lang(client_as(alice).get("/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER)) == "en"


def test_the_top_bar_switch_saves_the_choice_on_the_user_and_in_the_cookie(alice, client_as):
    client = client_as(alice)
    page = client.get("/datasets/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER).content.decode()
    assert 'name="language" value="zh-hans" lang="zh-hans"' in page and "简体中文" in page
    response = client.post("/language/", {"language": "zh-hans", "next": "/datasets/?q=x"})
    assert response.status_code == 302 and response["Location"] == "/datasets/?q=x"
    alice.refresh_from_db()
    assert alice.language == "zh-hans"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # Another browser of the same user, without the cookie, still gets the choice.
    page = client_as(alice).get("/datasets/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER).content.decode()
    assert _lang_of(page) == "zh-hans"
    assert 'value="en" lang="en"' in page and ">English<" in page


def _lang_of(page: str) -> str:
    return page.split('<html lang="', 1)[1].split('"', 1)[0]


def test_an_anonymous_switch_sets_only_the_cookie(client):
    response = client.post("/language/", {"language": "zh-hans", "next": "/login/"})
    assert response.status_code == 302
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE=ENGLISH_BROWSER)) == "zh-hans"


def test_the_switch_refuses_unknown_languages_and_foreign_redirects(alice, client_as):
    client = client_as(alice)
    assert client.post("/language/", {"language": "fr"}).status_code == 400
    assert client.get("/language/").status_code == 405
    response = client.post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    alice.refresh_from_db()
    assert alice.language == "en"


def test_the_switch_needs_the_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/language/", {"language": "zh-hans"}).status_code == 403


def test_set_language_refuses_a_language_the_site_does_not_offer(alice):
    with pytest.raises(ValueError):
        set_language(user=alice, language="de")


def test_dates_stay_iso_like_in_chinese():
    moment = timezone.make_aware(dt.datetime(2026, 12, 3, 8, 15))
    with translation.override("zh-hans"):
        assert formats.date_format(moment, "DATETIME_FORMAT") == "2026-12-03 08:15"
        assert formats.date_format(moment, "SHORT_DATE_FORMAT") == "2026-12-03"
        assert formats.date_format(moment.date()) == "2026-12-03"
        assert formats.number_format(1234567.5, decimal_pos=1, use_l10n=True, force_grouping=True) == "1,234,567.5"
        assert "%Y-%m-%d %H:%M" in formats.get_format("DATETIME_INPUT_FORMATS")


def test_a_chinese_user_can_type_dates_the_chinese_way():
    from django import forms

    field = forms.DateField()
    with translation.override("zh-hans"):
        assert field.clean("2026-12-03") == dt.date(2026, 12, 3)
        assert field.clean("2026/12/03") == dt.date(2026, 12, 3)
        assert field.clean("2026年12月3日") == dt.date(2026, 12, 3)
