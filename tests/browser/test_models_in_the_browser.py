"""The model registry in a real Chromium against two real sites (web servers, proxies and Celery
workers): two versions of one model trained through the API are compared on one chart, the bank's
analyst publishes one and telco's admin confirms it, the bank's admin registers the serving table,
an id scored through the API shows in the day's reconciliation, and the bank's half is exported
from the page and a tampered copy refused on the import page, in words."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.twosites.harness import eventually

from .chromium import SCREENSHOTS, launched, require_chromium
from .scene import ANALYST, ANALYST_PASSWORD, admin_password, signed_in, two_sites

pytestmark = [pytest.mark.browser, pytest.mark.twosites, pytest.mark.xdist_group("twosites-browser-models")]

MODEL_NAME = "Credit risk LR"


def _finished(site, job_id, seconds=240):
    def done():
        job = site.get(f"/api/jobs/{job_id}/")
        return job if job["status"] in ("succeeded", "failed", "cancelled", "refused") else None

    job = eventually(done, seconds=seconds, interval=0.5, what=f"job {job_id} finishes at {site.party_id}")
    assert job["status"] == "succeeded", job.get("error")
    return job


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    require_chromium()
    with two_sites(tmp_path_factory.mktemp("models-browser")) as scene:
        bank, telco, pid, tables = scene["bank"], scene["telco"], scene["pid"], scene["tables"]
        # Two versions of the same model: trained, then retuned with another learning rate.
        first = bank.post("/api/jobs/", {"project": pid, "template": "lr", "our_table": tables["bank"],
                                         "partner_table": tables["telco"], "options": {"max_epochs": 3},
                                         "name": MODEL_NAME}, expect=201)
        _finished(bank, first["id"])
        second = bank.post(f"/api/jobs/{first['id']}/rerun/", {"changes": {"lr": {"common": {"learning_rate": 0.3}}}},
                           expect=201)
        _finished(bank, second["id"])
        models = {m["number"]: m for m in bank.get(f"/api/models/?project={pid}")["results"]}
        assert sorted(models) == [1, 2] and {m["name"] for m in models.values()} == {MODEL_NAME}, models
        eventually(lambda: telco.get(f"/api/models/{models[1]['id']}/"), what="telco's half of v1 registered")
        yield {**scene, "models": models}


@pytest.fixture(scope="module")
def browser():
    with launched() as running:
        yield running


@pytest.fixture(scope="module")
def analyst(browser, sites):
    page = signed_in(browser, sites["bank"], ANALYST, ANALYST_PASSWORD)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def bank_admin(browser, sites):
    page = signed_in(browser, sites["bank"], "admin", admin_password(sites["bank"]))
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def telco_admin(browser, sites):
    page = signed_in(browser, sites["telco"], "admin", admin_password(sites["telco"]))
    yield page
    page.context.close()


def _reload_until(page, selector, *, seconds=30, what):
    """Reload the page until ``selector`` is on it (pages of other sites' doings do not update by themselves)."""
    deadline = time.monotonic() + seconds
    while True:
        if page.locator(selector).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not show within {seconds}s on {page.url}")
        time.sleep(0.5)
        page.reload()


def _score(site, model_id, body):
    request = urllib.request.Request(f"{site.url}/api/models/{model_id}/score/", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {site.token}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_registry_from_comparison_to_publication_scoring_and_export(sites, analyst, bank_admin, telco_admin):
    bank, telco, pid = sites["bank"], sites["telco"], sites["pid"]
    v1, v2 = sites["models"][1], sites["models"][2]
    page = analyst

    # The analyst opens the project's models: one name, both versions.
    page.goto(f"{bank.url}/projects/{pid}/")
    page.click("[data-testid=project-models] >> text=Models")
    page.wait_for_url(f"{bank.url}/projects/{pid}/models/")
    groups = page.locator("[data-testid=model-group]")
    assert groups.count() == 1 and groups.locator("h3").inner_text() == MODEL_NAME
    rows = groups.locator("tr[data-model]")
    assert rows.count() == 2
    assert [r.split("\t")[0].strip() for r in rows.locator("td:nth-child(2)").all_inner_texts()] == [
        f"{MODEL_NAME} · v2", f"{MODEL_NAME} · v1"]
    assert all(cell != "—" for cell in groups.locator("[data-metric=auc]").all_inner_texts())
    assert page.locator("[data-action=import]").count() == 0  # analysts do not import
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-models-list.png", full_page=True)

    # Both versions side by side: two ROC curves (and the diagonal) on one chart.
    for model in (v1, v2):
        page.check(f"input[name=ids][value='{model['id']}']")
    page.click("[data-action=compare]")
    page.wait_for_selector("[data-testid=compare-metrics]")
    canvas = page.locator("[data-testid=chart-compare-roc] canvas")
    assert canvas.count() == 1
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector("
                           "'[data-testid=chart-compare-roc] canvas'))")
    labels = page.evaluate("Chart.getChart(document.querySelector('[data-testid=chart-compare-roc] canvas'))"
                           ".data.datasets.map(d => d.label)")
    assert sorted(labels[:2]) == [f"{MODEL_NAME} · v1", f"{MODEL_NAME} · v2"] and labels[2:] == ["Random guess"], labels
    assert page.locator("[data-param=learning_rate][data-differs='1']").count() == 1
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-models-compare.png", full_page=True)

    # The analyst publishes v1: it waits for the partner.
    page.click(f"[data-testid=compare-metrics] >> text={MODEL_NAME} · v1")
    page.wait_for_url(f"{bank.url}/models/{v1['id']}/")
    page.click("[data-action=publish]")
    page.wait_for_selector("[data-testid=model-status][data-status=requested]")
    assert "waiting for Demo Telco to confirm" in page.inner_text("[data-testid=publication]")

    # Telco's admin sees the request on telco's models page and confirms it.
    telco_admin.goto(f"{telco.url}/projects/{pid}/models/")
    _reload_until(telco_admin, f"tr[data-model='{v1['id']}'][data-status=asked]", what="the bank's request at telco")
    telco_admin.click(f"tr[data-model='{v1['id']}'] a")
    assert "Demo Bank asks to publish it" in telco_admin.inner_text("[data-testid=publication]")
    telco_admin.screenshot(path=f"{SCREENSHOTS}/fedweb-model-confirm.png", full_page=True)
    telco_admin.click("[data-action=confirm]")
    telco_admin.wait_for_selector("[data-testid=model-status][data-status=published]")

    # The bank's page shows it published, with the scoring endpoint.
    _reload_until(page, "[data-testid=model-status][data-status=published]", what="telco's confirmation at the bank")
    assert f"/api/models/{v1['id']}/score/" in page.inner_text("[data-testid=score-url]")
    assert "Authorization: Bearer" in page.inner_text("[data-testid=score-example]")
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-model-published.png", full_page=True)

    # The bank's admin registers the serving table in the form (telco's admin does the same at telco).
    admin = bank_admin
    admin.goto(f"{bank.url}/models/{v1['id']}/")
    admin.select_option("#serving-dataset", label="Applicants")
    admin.click("[data-action=register-serving]")
    admin.wait_for_selector("[data-testid=serving-current] >> text=Applicants, registered by admin")
    telco.post(f"/api/models/{v1['id']}/serving-table/", {"dataset": sites["tables"]["telco"]})

    # One id scored through the API with the bank's admin token shows in today's reconciliation.
    one = str(sites["guest"]["id"].iloc[45])
    answer = _score(bank, v1["id"], {"id": one})
    assert [s["id"] for s in answer["scores"]] == [one] and 0 < answer["scores"][0]["probability"] < 1
    admin.goto(f"{bank.url}/projects/{pid}/scoring/")
    today = dt.date.today().isoformat()
    admin.click(f"tr[data-day='{today}'][data-model='{v1['id']}'] [data-action=reconcile]")
    admin.wait_for_selector("[data-testid=reconciliation]")
    assert admin.inner_text("[data-count=ours]") == "1" and admin.inner_text("[data-count=theirs]") == "1"
    assert admin.inner_text("[data-count=matched]") == "1"
    assert admin.locator("[data-testid=balanced]").is_visible()
    admin.screenshot(path=f"{SCREENSHOTS}/fedweb-scoring-reconciled.png", full_page=True)
    with admin.expect_download() as caught:
        admin.click("[data-testid=reconcile-csv]")
    reconciled = Path(caught.value.path()).read_text(encoding="utf-8-sig")
    assert caught.value.suggested_filename.endswith(f"{today}.csv")
    assert len(reconciled.strip().splitlines()) == 2 and "matched" in reconciled, reconciled

    # The bank's admin exports the bank's half from the version page.
    admin.goto(f"{bank.url}/models/{v1['id']}/")
    export = admin.locator("[data-testid=export]")
    assert "up to 20 of this site's own rows" in export.inner_text()
    fingerprint = admin.inner_text("[data-testid=export-fingerprint]").strip()
    assert len(fingerprint) == 64
    with admin.expect_download() as caught:
        admin.click("[data-action=export]")
    assert caught.value.suggested_filename == "Credit-risk-LR-v1-guest.fedweb-model.json"
    bundle = json.loads(Path(caught.value.path()).read_bytes())
    assert bundle["model"]["id"] == v1["id"] and len(bundle["sample"]["rows"]) == 20

    # A copy with one number changed is refused on the import page, in words.
    admin.goto(f"{bank.url}/projects/{pid}/models/")
    admin.click("[data-action=import]")
    admin.wait_for_url(f"{bank.url}/projects/{pid}/models/import/")
    bundle["sample"]["part"]["u"][0] += 1.0
    admin.set_input_files("#id_file", files=[{"name": "tampered.fedweb-model.json", "mimeType": "application/json",
                                              "buffer": json.dumps(bundle).encode()}])
    admin.click("button[data-action=import]")
    refusal = admin.locator("[data-testid=import-refused]")
    refusal.wait_for()
    assert "Nothing was imported." in refusal.inner_text()
    assert "signature does not match its content" in refusal.inner_text()
    admin.screenshot(path=f"{SCREENSHOTS}/fedweb-model-import-refused.png", full_page=True)

    # The version page on a phone: nothing cut off.
    phone = admin.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{bank.url}/models/{v1['id']}/")
    phone.wait_for_selector("[data-testid=export]")
    assert phone.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1"), (
        phone.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]"))
    phone.screenshot(path=f"{SCREENSHOTS}/fedweb-model-phone.png", full_page=True)
    phone.close()
