"""Every page in Simplified Chinese, and a catalog that is complete and compiled.

The page walk discovers the routes from the URL resolver, so a page added later is
walked without touching this file. Each route's ids come from the fixtures by the
path segment in front of them (``datasets/<pk>`` is a dataset, ``jobs/<pk>`` a job,
``nodes/<node>`` a node of that job...); a route whose ids this file cannot build
fails, naming it, so the scene grows with the site. The fixtures' names are Chinese
where the site allows it, and the rest (ids, column names, party ids) are removed
from the text before it is checked: what remains in English is a string that nobody
translated.
"""

from __future__ import annotations

import functools
import gettext as gnu_gettext
import os
import re
import shutil
import subprocess
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import translation

BASE_DIR = Path(settings.BASE_DIR)
PO_PATH = BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")

# True terms: names and abbreviations a Chinese page keeps in Latin letters.
ALLOWED_WORDS = {
    "FedWeb", "API", "AUC", "KS", "PSI", "IV", "WOE", "CSV", "SHA", "mTLS", "TLS", "JSON", "ROC", "UTC", "ID",
    "LR", "SecureBoost", "HTTPS", "HTTP", "URL", "gRPC", "UTF", "GBK", "GB", "KB", "MB", "TB", "PB", "Bearer",
    "Authorization", "MSE", "MAE", "RMSE", "ECDH", "Paillier", "Tab", "PEM", "IP", "PR", "F1", "R²", "L2",
    "Shift-JIS", "Big5", "Latin-1", "Windows-1252", "JavaScript", "Montgomery", "RFC", "libsodium", "hessian",
    "eta", "lambda", "gamma", "PDO", "pandas.DataFrame", "pyarrow.Table", "model_io", "Pearson", "SVG", "USB",
    "SecretFlow",
}

# Routes that are not pages: the API speaks JSON to scripts (its docs pages are
# Swagger UI and ReDoc, in their own English), and the health check is for monitors.
SKIPPED_PREFIXES = ("api/", "healthz", "django-admin/")

# Untranslated texts whose fix belongs to another part of the site, each with where it
# is. They are reported, not failed; an entry that no page shows any more fails, so the
# list only shrinks. (route name pattern, English run pattern, where the fix goes)
KNOWN_GAPS: list[tuple[str, str, str]] = []


def _known_gap(route_name: str, run: str) -> str | None:
    for route_pattern, run_pattern, where in KNOWN_GAPS:
        if re.fullmatch(route_pattern, route_name) and re.fullmatch(run_pattern, run):
            return where
    return None


# --- The scene -----------------------------------------------------------------------------

OURS_CSV = "id,y,x1,x2,city\n" + "".join(
    f"{i:04d},{i % 2},{i * 0.5},{i % 7},{'北京' if i % 3 else '上海'}\n" for i in range(120)
)
BAD_CSV = "id,y\n1,0\n2\n"


@dataclass
class Scene:
    admin: object
    analyst: object
    objects: dict[str, list] = field(default_factory=dict)  # path segment -> candidate values
    data: set[str] = field(default_factory=set)  # user data to remove from the pages' text


@pytest.fixture
def scene(db, django_user_model, make_dataset, settings, django_capture_on_commit_callbacks):
    # Everything is done as the site's Chinese users do it, in their language: texts a
    # service keeps (a project's history) are written in the language of whoever acted.
    with translation.override("zh-hans"):
        return _build_scene(django_user_model, make_dataset, settings, django_capture_on_commit_callbacks)


def _build_scene(django_user_model, make_dataset, settings, django_capture_on_commit_callbacks) -> Scene:
    from datasets import services as dataset_services
    from fedweb.api.models import ApiToken
    from fedweb.api.tokens import create_token
    from fedweb.proxy import pki
    from jobs import services as job_services
    from jobs import templates
    from jobs.models import Job, JobStatus, Sweep, TaskStatus
    from projects import pairing
    from projects import services as project_services
    from projects.models import Project, ProjectMember, ProjectStatus, ProjectTable, RemoteTable

    settings.SITE_PARTY_ID = "site-1"
    settings.SITE_NAME = "测试站点"
    admin = django_user_model.objects.create_user(username="王经理", password="pw-不重要-123", role="admin",
                                                  language="zh-hans", first_name="经理", last_name="王")
    analyst = django_user_model.objects.create_user(username="李分析", password="pw-不重要-123", role="analyst",
                                                    language="zh-hans")
    viewer = django_user_model.objects.create_user(username="赵查看", password="pw-不重要-123", role="viewer")
    former = django_user_model.objects.create_user(username="钱离职", password="pw-不重要-123", is_active=False)

    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "某电信公司",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    project = Project.objects.create(name="联合信贷风控", purpose="预测逾期", partner=partner, initiator="site-1",
                                     label_holder="site-1", status=ProjectStatus.ACTIVE)
    invitation = Project.objects.create(name="营销响应", purpose="预测响应", partner=partner, initiator="telco",
                                        label_holder="telco", status=ProjectStatus.INVITED, status_changed_by="telco")
    for p in (project, invitation):
        ProjectMember.objects.create(project=p, user=analyst, added_by=admin)
        ProjectMember.objects.create(project=p, user=viewer, added_by=admin)

    dataset = make_dataset(analyst, OURS_CSV, name="申请人样本", filename="申请人.csv")
    failed = make_dataset(analyst, BAD_CSV, name="坏文件", filename="坏文件.csv")
    dataset_services.grant(by=admin, dataset=dataset, user=viewer)
    project_services.authorise_table(user=admin, project=project, dataset=dataset,
                                     policy={"min_set_size": 10, "runs_per_day": 9, "partner_may_receive": True})
    theirs = "11111111-1111-1111-1111-111111111111"
    RemoteTable.objects.create(project=project, table_id=theirs, name="通话记录", row_count=110,
                               columns=[{"name": "id", "role": "id"}, {"name": "z1", "role": "feature"},
                                        {"name": "z2", "role": "feature", "type": "numeric"}])
    create_token(user=admin, name="夜间上传", days=30)
    create_token(user=analyst, name="夜间上传", days=30)

    with django_capture_on_commit_callbacks(execute=False):
        spec = templates.build("lr", project, our_table=str(dataset.pk), partner_table=theirs)
        job = job_services.create_job(user=analyst, project=project, spec=spec, name="逾期预测模型", template="lr")
        failed_job = job_services.create_job(user=analyst, project=project, spec=spec, name="失败的任务", template="lr")
    # A job part way through, and one that failed, so the pages show progress and an error.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    tasks = list(job.tasks.order_by("id"))
    for task, status in zip(tasks, [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED, TaskStatus.RUNNING], strict=False):
        task.status, task.progress = status, 1.0 if status == TaskStatus.SUCCEEDED else 0.4
        task.save(update_fields=["status", "progress"])
    Job.objects.filter(pk=failed_job.pk).update(status=JobStatus.FAILED, error="合作方中断了连接",
                                                failed_party="telco", failed_node="psi")
    failed_job.tasks.filter(node="psi").update(status=TaskStatus.FAILED, error="合作方中断了连接")
    sweep = Sweep.objects.create(project=project, base_job=job, name="学习率对比", created_by=analyst,
                                 axes=[{"node": "lr", "param": "learning_rate", "values": [0.05, 0.1]}])
    Job.objects.filter(pk=failed_job.pk).update(sweep=sweep)

    # A second version of the project's table: the pages show versions and offer the move to it.
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        newer = dataset_services.upload_version(user=analyst, dataset=dataset,
                                                uploaded_file=SimpleUploadedFile("申请人-2月.csv", OURS_CSV.encode()))
    models = _registry_scene(project, job, failed_job, dataset, admin)
    nodes = [n["id"] for n in spec["nodes"]]
    table = ProjectTable.objects.get(project=project, dataset=dataset)
    grant = dataset.grants.get(user=viewer)
    result = Scene(admin=admin, analyst=analyst)
    result.objects = {
        "datasets": [dataset.pk, failed.pk, newer.pk],
        "projects": [project.pk, invitation.pk],
        "jobs": [job.pk, failed_job.pk],
        "sweeps": [sweep.pk],
        "nodes": nodes,
        "tables": [table.pk],
        "grants": [grant.pk],
        "members": [viewer.pk],
        "users": [analyst.pk, admin.pk, former.pk],  # someone else, oneself, a deactivated account
        "tokens": [ApiToken.objects.filter(user=admin).values_list("pk", flat=True).first()],
        "partners": [partner.party_id],
        "models": [m.pk for m in models],
    }
    result.data = {
        "site-1", "telco", "127.0.0.1:9", theirs, "id", "y", "x1", "x2", "z1", "z2", "city",
        *nodes, *(n["component"] for n in spec["nodes"]), "lr",
    }
    return result


def _registry_scene(project, job, other_job, dataset, admin) -> list:
    """Two versions of a model: one the partner asks to publish, one published with a serving table, and
    the online scoring requests this site logged with it."""
    from django.utils import timezone

    from engine.ml import model_io
    from jobs import artifacts
    from jobs.models import Model, ScoringOutcome, ScoringRequest, ServingTable, Task, TaskStatus, model_id

    report = {"task": "binary", "n": 40, "n_positive": 20, "n_negative": 20, "auc": 0.81, "ks": 0.45,
              "ks_threshold": 0.5, "average_precision": 0.7,
              "roc": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.7, 1.0], "thresholds": [1.0, 0.5, 0.0]}}
    Task.objects.filter(job=job, site=Task.OURS, node="evaluation").update(
        status=TaskStatus.SUCCEEDED, metrics={"final": {"data": report}})
    models = []
    for number, source in enumerate((job, other_job), start=1):
        half = artifacts.store("model", model_io.build(
            component="hetero_lr", component_version="1.0.0", role="guest", model_id=str(model_id(source.pk, "lr")),
            params={}, body={"features": ["x1", "x2"], "weights": [1.0, 2.0]}))
        models.append(Model.objects.create(
            id=model_id(source.pk, "lr"), project=project, job=source, node="lr", component="hetero_lr",
            version="1.0.0", role="guest", artifact=half, name="逾期预测模型", number=number,
            params={"learning_rate": 0.1, "max_epochs": 10, "shuffle": True, "early_stopping": "none"},
            consent_partner_at=timezone.now(), consent_partner_by="张三",
            consent_here_at=timezone.now() if number == 2 else None, consent_here_by="王经理" if number == 2 else ""))
    ServingTable.objects.create(model=models[1], dataset=dataset, registered_by=admin)
    for outcome in (ScoringOutcome.SCORED, ScoringOutcome.TIMEOUT):
        ScoringRequest.objects.create(request_id=uuid.uuid4(), project=project, model_id=models[1].pk,
                                      model_number=2, role="guest", ids=3, scored=3, outcome=outcome)
    return models


# --- Walking the routes ------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


@dataclass
class Route:
    name: str  # "namespace:name", or the route itself when unnamed
    route: str  # "datasets/<uuid:pk>/"
    pattern: URLPattern


def routes() -> list[Route]:
    """Every route of fedweb/urls.py, with its full path template."""
    found: list[Route] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for entry in patterns:
            part = str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = namespace
                if entry.namespace:
                    ns = f"{namespace}{entry.namespace}:"
                walk(entry.url_patterns, prefix + part, ns)
            elif isinstance(entry, URLPattern):
                route = prefix + part
                found.append(Route(name=f"{namespace}{entry.name}" if entry.name else route, route=route, pattern=entry))

    walk(get_resolver().url_patterns, "", "")
    return found


def _segment_before(route: str, start: int) -> str:
    head = route[:start].rstrip("/")
    return head.rsplit("/", 1)[-1] if head else ""


def paths_for(route: Route, scene: Scene) -> tuple[list[str], str | None]:
    """The concrete paths to walk for a route, or (none, why it cannot be built)."""
    if "^" in route.route or "(?P" in route.route:
        return [], "a regular-expression route: give it an entry in this test"
    holes = list(_PLACEHOLDER.finditer(route.route))
    choices = []
    for hole in holes:
        segment = _segment_before(route.route, hole.start())
        values = scene.objects.get(segment)
        if not values:
            return [], f"no fixture for <{hole.group('name')}> after {segment!r}/: add one to the scene"
        choices.append(values)
    if not holes:
        return ["/" + route.route], None
    # Routes with one id are walked once per candidate (a ready and a failed dataset...);
    # routes with several take the first of each, which belong together.
    if len(holes) == 1:
        return ["/" + _fill(route.route, holes, [value]) for value in choices[0]], None
    return ["/" + _fill(route.route, holes, [values[0] for values in choices])], None


def _fill(route: str, holes, values) -> str:
    out, last = [], 0
    for hole, value in zip(holes, values, strict=True):
        out.append(route[last:hole.start()])
        out.append(str(value))
        last = hole.end()
    out.append(route[last:])
    return "".join(out)


# --- Reading a page as a person sees it --------------------------------------------------------

_SKIPPED_ELEMENTS = {"script", "style", "code", "pre", "kbd", "samp", "template"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "label", "aria-description"}
_CONFIRM = re.compile(r"""confirm\(\s*(['"])(?P<text>.*?)(?<!\\)\1""", re.S)


class PageText(HTMLParser):
    """The texts a reader sees: element text, and the attributes a browser shows."""

    def __init__(self, language: str):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.texts: list[str] = []
        self.html_lang: str | None = None
        self._skipping: list[str] = []  # tags whose subtree is not checked, innermost last

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.html_lang = attributes.get("lang")
        if self._skipping:
            if tag == self._skipping[-1] and tag not in _VOID:
                self._skipping.append(tag)
            return
        lang = attributes.get("lang")
        # Text marked as another language is meant to be in it (a language's own name in the switch).
        other_language = lang is not None and tag != "html" and not lang.lower().startswith(self.language[:2])
        if tag in _SKIPPED_ELEMENTS or other_language:
            if tag not in _VOID:
                self._skipping.append(tag)
            return
        for name, value in attributes.items():
            if not value:
                continue
            if name in _SHOWN_ATTRIBUTES:
                if not value.lstrip().startswith(("{", "[")):  # an example of JSON to paste is code
                    self.texts.append(value)
            elif name == "value" and tag == "input" and attributes.get("type") in ("submit", "button", "reset"):
                self.texts.append(value)
            elif name.startswith("on"):
                self.texts.extend(m.group("text") for m in _CONFIRM.finditer(value))
            elif name.startswith("data-") and re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", value):
                # Messages a script shows later ("Sending… %s%"); ids and flags have no spaces.
                self.texts.append(value)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self._skipping and self._skipping[-1] == tag and tag not in _VOID:
            self._skipping.pop()

    def handle_endtag(self, tag):
        if self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.texts.append(data)


_DATA_PATTERNS = [
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I),  # uuids
    re.compile(r"\b(?:[0-9A-F]{2}:){7,}[0-9A-F]{2}\b", re.I),  # fingerprints
    re.compile(r"\b[0-9a-f]{12,}\b", re.I),  # hashes
    re.compile(r"\bfw_\w+"),  # token prefixes
    re.compile(r"\S+@\S+"),  # e-mail addresses
]
_WORD = re.compile(r"[A-Za-z][\w'’²\-.]*")
_RUN = re.compile(r"[A-Za-z][\w'’²\-.]*(?:[ \t\n,;:()/&]+[A-Za-z][\w'’²\-.]*)*")
# Code a translated text quotes: “validate”, 'x25519', <column>.
_QUOTED_NAME = re.compile(r"[“\"'‘「]\s*[A-Za-z_][\w.\-]*\s*[”\"'’」]|<[A-Za-z_][\w\-]*>|``[^`]+``")


def english_left(texts: list[str], data: set[str]) -> list[str]:
    """The runs of English words in ``texts`` once user data and true terms are taken out."""
    runs = []
    data_words = sorted(data, key=len, reverse=True)
    for text in texts:
        for pattern in _DATA_PATTERNS:
            text = pattern.sub(" ", text)
        text = _QUOTED_NAME.sub(" ", text)
        for item in data_words:
            text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(item)}(?![A-Za-z0-9_])", " ", text)
        for run in _RUN.findall(text):
            words = [w for w in _WORD.findall(run) if _is_prose(w)]
            if words:
                runs.append(run.strip())
    return runs


def _is_prose(word: str) -> bool:
    word = word.rstrip("'’-.")
    if len(word) < 2 or word in ALLOWED_WORDS or word.upper() in ALLOWED_WORDS or word in _engine_names():
        return False
    # Identifiers (label_column, x25519, manage.py) are code the text quotes, not English.
    return not re.search(r"[_0-9.]", word)


@functools.cache
def _engine_names() -> frozenset[str]:
    """The engine's identifiers, which texts quote as they are: components (psi, split),
    ports (data, model) and parameters (decay, tol)."""
    from engine.registry import describe

    names = set()
    for c in describe():
        names.add(c["name"])
        names.update(port["name"] for port in c["inputs"] + c["outputs"])
        names.update(c["parameters"].get("properties", {}))
    return frozenset(names)


# --- The walk ----------------------------------------------------------------------------------


@dataclass
class Walk:
    english: dict[str, list[str]] = field(default_factory=dict)
    known: dict[str, set[str]] = field(default_factory=dict)  # KNOWN_GAPS entry -> pages
    unbuildable: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    stubs: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def walk_pages(client, scene: Scene, language="zh-hans", *, forbidden_ok=False) -> Walk:
    result = Walk()
    for route in routes():
        if route.route.startswith(SKIPPED_PREFIXES):
            continue
        paths, why = paths_for(route, scene)
        if why:
            result.unbuildable.append(f"{route.name} ({route.route}): {why}")
            continue
        for path in paths:
            check_page(client, path, route, scene, result, language, forbidden_ok)
    return result


def check_page(client, path, route, scene, result: Walk, language, forbidden_ok=False) -> None:
    try:
        # The browser asks for English: the user's own language must win.
        response = client.get(path, HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    except NotImplementedError:
        result.stubs.append(f"{route.name} {path}")
        return
    except Exception as exc:  # noqa: BLE001 - every failure is reported together
        result.broken.append(f"{route.name} {path}: {type(exc).__name__}: {exc}")
        return
    if response.status_code in (204, 301, 302, 303, 405) or getattr(response, "streaming", False):
        return
    if response.status_code == 403 and forbidden_ok:  # not this user's page (an analyst on the admin pages)
        return
    if "text/html" not in response.get("Content-Type", ""):
        return
    if response.status_code != 200:
        result.broken.append(f"{route.name} {path}: HTTP {response.status_code} (does the fixture fit this page?)")
        return
    result.checked.append(path)
    parser = PageText(language)
    parser.feed(response.content.decode("utf-8"))
    problems = []
    for run in english_left(parser.texts, scene.data):
        where = _known_gap(route.name, run)
        if where:
            result.known.setdefault(where, set()).add(path)
        else:
            problems.append(run)
    if parser.html_lang is not None and parser.html_lang.lower() != language:
        problems.insert(0, f'<html lang="{parser.html_lang}">')
    if problems:
        result.english[f"{route.name} {path}"] = sorted(set(problems))


def _report(result: Walk) -> str:
    lines = []
    if result.unbuildable:
        lines.append("Pages this test cannot build (give their ids a fixture in tests/site/test_translations.py):")
        lines += [f"  {entry}" for entry in result.unbuildable]
    if result.broken:
        lines.append("Pages that did not render:")
        lines += [f"  {entry}" for entry in result.broken]
    if result.english:
        lines.append("English left on pages shown in Simplified Chinese (run `make messages` and translate "
                     "locale/zh_Hans/LC_MESSAGES/django.po, or mark the text with {% translate %}):")
        for page, runs in result.english.items():
            lines.append(f"  {page}")
            lines += [f"      {run!r}" for run in runs]
    return "\n".join(lines)


def _walk_as(client_as, user, scene) -> Walk:
    result = walk_pages(client_as(user), scene, forbidden_ok=not user.is_site_admin)
    if result.stubs:
        warnings.warn("pages not written yet, not checked: " + ", ".join(result.stubs), stacklevel=2)
    for where, pages in result.known.items():
        warnings.warn(f"known untranslated text ({where}) on {', '.join(sorted(pages))}", stacklevel=2)
    assert not (result.unbuildable or result.broken or result.english), _report(result)
    return result


def test_every_page_is_in_chinese_for_a_site_admin(scene, client_as):
    result = _walk_as(client_as, scene.admin, scene)
    assert any(path.startswith("/jobs/") for path in result.checked), "the job pages were not walked"
    project = scene.objects["projects"][0]
    assert f"/projects/{project}/models/import/" in result.checked, "the page importing a model was not walked"
    fixed = [where for _route, _run, where in KNOWN_GAPS if where not in result.known]
    assert not fixed, f"these known gaps are not seen any more: remove them from KNOWN_GAPS: {fixed}"


def test_every_page_is_in_chinese_for_an_analyst(scene, client_as):
    _walk_as(client_as, scene.analyst, scene)


def test_the_sign_in_page_follows_a_chinese_browser(client, settings):
    settings.SITE_NAME = "测试站点"  # the site's name is the operator's choice, not a text to translate
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.8")
    parser = PageText("zh-hans")
    parser.feed(response.content.decode())
    assert parser.html_lang == "zh-hans"
    assert english_left(parser.texts, set()) == []


def test_the_walk_finds_english(scene, client_as):
    """The checker itself: an untranslated text, attribute or confirmation is caught, data is not."""
    parser = PageText("zh-hans")
    parser.feed('<html lang="zh-hans"><p>数据集 申请人样本 · x1</p><input placeholder="Search here">'
                '<button lang="en">English</button><code>manage.py verify_audit</code>'
                '<form onsubmit="return confirm(\'Delete it?\')"><input type="submit" value="Go on"></form>'
                '<p>AUC 与 KS · label_column</p><p>Not translated</p></html>')
    assert english_left(parser.texts, {"x1"}) == ["Search here", "Delete it", "Go on", "Not translated"]


def test_the_scene_builds_every_route(scene):
    unbuildable = []
    for route in routes():
        if not route.route.startswith(SKIPPED_PREFIXES):
            _paths, why = paths_for(route, scene)
            if why:
                unbuildable.append(f"{route.name}: {why}")
    assert not unbuildable, "\n".join(unbuildable)


# --- The catalog -------------------------------------------------------------------------------


def test_every_message_is_translated_and_none_is_fuzzy():
    po = polib.pofile(str(PO_PATH))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"{len(untranslated)} untranslated in {PO_PATH.name}: {untranslated[:20]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {PO_PATH.name} (check the translation, then drop the flag): {fuzzy[:20]}"
    assert po.metadata.get("Language") == "zh_Hans"


def test_placeholders_survive_translation():
    po = polib.pofile(str(PO_PATH))
    placeholder = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")
    wrong = []
    for entry in po.translated_entries():
        if "python-format" not in entry.flags and "python-brace-format" not in entry.flags:
            continue
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        wanted = sorted(set(placeholder.findall(" ".join(sources))))
        for text in entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]:
            if sorted(set(placeholder.findall(text))) != wanted:
                wrong.append(f"{entry.msgid!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)


def _catalog(mo: Path) -> dict:
    with mo.open("rb") as handle:
        catalog = dict(gnu_gettext.GNUTranslations(handle)._catalog)
    catalog.pop("", None)  # the header: its dates differ between compilers
    return catalog


def test_the_committed_mo_matches_the_po(tmp_path):
    """A site without gettext runs on the committed .mo: it must say what the .po says."""
    fresh = tmp_path / "django.mo"
    polib.pofile(str(PO_PATH)).save_as_mofile(str(fresh))
    assert MO_PATH.exists(), "compile it with `make messages`"
    committed, wanted = _catalog(MO_PATH), _catalog(fresh)
    stale = sorted(k for k in set(committed) | set(wanted) if committed.get(k) != wanted.get(k))
    assert not stale, f"{MO_PATH} is out of date with the .po (run `make messages`): {stale[:10]}"


def test_the_engine_text_catalog_is_up_to_date():
    from fedweb.i18n.catalog import MODULE_PATH, current_module

    assert MODULE_PATH.read_text(encoding="utf-8") == current_module(), (
        "fedweb/i18n/engine_text.py is out of date with the engine's components: run `make messages`"
    )


_NOT_SOURCES = (".git", ".venv", ".venv-ref", "var", "var-*", "node_modules", "tests", "benchmarks", "docs", "docker",
                "locale", "vendor", "__pycache__", ".pytest_cache", ".hypothesis", "test-results", "*.mo", "*.po")


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext")
def test_the_po_has_every_message_of_the_sources(tmp_path):
    """Texts in Python code that no page walked above shows (error messages...) are in the .po too.

    makemessages runs on a copy of the sources, so it cannot touch the real catalog."""
    copy = tmp_path / "src"
    shutil.copytree(BASE_DIR, copy, ignore=shutil.ignore_patterns(*_NOT_SOURCES))
    (copy / "locale").mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="fedweb.settings.test", FEDWEB_DATA_DIR=str(tmp_path / "data"))
    subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--verbosity=0"], cwd=copy, env=env,
                   check=True, timeout=300)
    wanted = {(e.msgctxt, e.msgid) for e in polib.pofile(str(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))}
    have = {(e.msgctxt, e.msgid) for e in polib.pofile(str(PO_PATH)) if not e.obsolete}
    missing = sorted(wanted - have, key=str)
    assert not missing, f"{len(missing)} texts are not in the .po yet (run `make messages`): {missing[:15]}"


# --- Engine texts in the pages -------------------------------------------------------------


def test_translate_schema_translates_titles_descriptions_and_enum_labels():
    from engine.registry import get_component

    from fedweb.i18n import ENUM_LABELS, translate_component, translate_schema

    schema = get_component("psi").describe()["parameters"]
    with translation.override("zh-hans"):
        zh = translate_schema(schema)
        component = translate_component(get_component("hetero_lr").describe())
    with translation.override("en"):
        en = translate_schema(schema)
    reveal = zh["properties"]["reveal"]
    assert reveal["enum"] == schema["properties"]["reveal"]["enum"], "the values a spec holds never change"
    assert set(reveal[ENUM_LABELS]) == set(reveal["enum"])
    assert english_left([reveal["title"], reveal["description"], *reveal[ENUM_LABELS].values()], set()) == []
    assert en["properties"]["reveal"]["title"] == schema["properties"]["reveal"]["title"]
    assert ENUM_LABELS not in schema["properties"]["reveal"], "the argument is not changed"
    assert {r["label"] for r in component["roles"]} == {"标签方", "特征方"}
    assert english_left([component["description"]] + [p["description"] for p in component["inputs"]], set()) == []


def test_every_engine_text_reads_in_chinese():
    """Titles, descriptions and labels of every registered component, as the new-job form shows them."""
    from engine.registry import describe

    from fedweb.i18n import translate_component

    left = {}
    with translation.override("zh-hans"):
        for description in describe():
            texts = []

            def collect(node):
                if isinstance(node, dict):
                    texts.extend(v for k, v in node.items() if k in ("title", "description", "label") and isinstance(v, str))
                    texts.extend(node.get("x-enum-labels", {}).values())
                    for v in node.values():
                        collect(v)
                elif isinstance(node, list):
                    for v in node:
                        collect(v)

            collect(translate_component(description))
            runs = english_left(texts, set())
            if runs:
                left[description["name"]] = sorted(set(runs))
    assert not left, left
