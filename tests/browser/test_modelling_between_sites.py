"""The analyst's whole modelling workflow in a real Chromium against two real sites (web servers,
proxies and Celery workers): build the LR pipeline from the forms only, the partner's admin
approves it, watch it run, read the charts, retune the learning rate with the first steps
reused, sweep three learning rates, and stop a pipeline after the overlap for a decision."""

from __future__ import annotations

import pytest

from tests.twosites.harness import eventually

from .chromium import SCREENSHOTS, launched, require_chromium, settled
from .scene import ANALYST, ANALYST_PASSWORD, admin_password, signed_in, two_sites

pytestmark = [pytest.mark.browser, pytest.mark.twosites, pytest.mark.xdist_group("twosites-browser")]

UPSTREAM = ("psi", "split", "scale", "scale_validate", "binning", "selection")


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    require_chromium()
    with two_sites(tmp_path_factory.mktemp("modelling")) as scene:
        scene["telco"].shell("from projects.models import Project; "
                             f"Project.objects.filter(pk='{scene['pid']}').update(approve_partner_jobs=True)")
        yield {**scene, "jobs": {}}


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
def partner_admin(browser, sites):
    telco = sites["telco"]
    page = signed_in(browser, telco, "admin", admin_password(telco))
    yield page
    page.context.close()


def _launch(page):
    """Start the job with its Start button. The estimate beside the form is redrawn after each change and
    can move the button under the pointer, so the form is submitted through its button, not at a position."""
    settled(page)
    assert page.is_visible("[data-action=launch]")
    page.eval_on_selector("#job-form", "form => form.requestSubmit(form.querySelector('[data-action=launch]'))")


def _job_status(site, job_id):
    return site.get(f"/api/jobs/{job_id}/")["status"]


def _approve_at_telco(sites, job_id):
    eventually(lambda: _job_status(sites["telco"], job_id) == "approval", seconds=60, what="the job waits at telco")
    sites["telco"].post(f"/api/jobs/{job_id}/approve/")


def _wait_status(page, status, seconds=300):
    page.wait_for_selector(f"[data-testid=job-status][data-status={status}]", timeout=seconds * 1000)


def _no_sideways_scroll(page):
    assert page.evaluate("document.scrollingElement.scrollWidth") <= page.viewport_size["width"] + 2, page.url


def test_the_analyst_builds_the_lr_pipeline_from_forms_the_partner_approves_and_the_charts_show(sites, analyst,
                                                                                                 partner_admin):
    bank, page = sites["bank"], analyst
    page.click("nav >> text=Projects")
    page.click("text=Credit risk with Telco")
    page.click("[data-testid=project-jobs] >> text=New job")
    page.click("[data-template=lr]")
    page.wait_for_selector("[data-testid=estimate]")
    assert "Estimated run time" in page.inner_text("[data-testid=estimate]")
    page.fill("#id_name", "Default risk LR")
    page.fill("#id_lr-max_epochs", "5")
    page.select_option("#id_lr-validation_reveal", "scores")
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-new-lr-job.png", full_page=True)
    _launch(page)
    page.wait_for_selector("[data-testid=job-run]")
    job_id = page.url.rstrip("/").split("/")[-1]
    sites["jobs"]["lr"] = job_id

    # The partner's admin sees it waiting on the dashboard, opens it and approves it.
    telco = sites["telco"]
    eventually(lambda: _job_status(telco, job_id) == "approval", seconds=60, what="the job waits at telco")
    partner_admin.goto(f"{telco.url}/")
    partner_admin.click(f"a[href='/jobs/{job_id}/']")
    approval = partner_admin.locator("[data-testid=approval]")
    assert "Usage" in approval.inner_text()  # the table of theirs the job reads
    assert "Train the logistic regression" in approval.inner_text()
    partner_admin.screenshot(path=f"{SCREENSHOTS}/fedweb-partner-approval.png", full_page=True)
    partner_admin.click("[data-action=approve]")

    # The analyst's page follows the run live (no reload: a marker set now survives until the end of PSI).
    page.wait_for_selector("[data-testid=job-status][data-status=running]", timeout=60_000)
    page.evaluate("window.__stillTheSamePage = true")
    page.wait_for_function("document.querySelector('[data-task=\"psi:ours\"] [data-state]').textContent.trim() "
                           "=== 'Succeeded'", timeout=120_000)
    assert page.evaluate("window.__stillTheSamePage === true")
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-lr-job-running.png", full_page=True)
    _wait_status(page, "succeeded")

    for chart in ("chart-evaluation-roc", "chart-evaluation-ks", "chart-binning-iv"):
        page.locator(f"[data-testid={chart}]").scroll_into_view_if_needed()
        assert page.locator(f"[data-testid={chart}]").is_visible(), chart
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-lr-job-results.png", full_page=True)

    # The estimate the analyst saw was within a factor of two of the time the job took.
    took = float(bank.shell(f"from jobs.models import Job; j = Job.objects.get(pk='{job_id}'); "
                            "print((j.finished_at - j.accepted_at).total_seconds())"))
    estimated = float(bank.shell(f"from jobs.models import Job; print(Job.objects.get(pk='{job_id}').estimate_seconds)"))
    assert took / 2 <= estimated <= took * 2, (estimated, took)

    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(page.url)
    _no_sideways_scroll(phone)
    phone.screenshot(path=f"{SCREENSHOTS}/fedweb-lr-job-phone.png", full_page=True)
    phone.close()


def test_changing_the_learning_rate_reruns_with_the_first_steps_reused(sites, analyst):
    bank, page, job_id = sites["bank"], analyst, sites["jobs"]["lr"]
    page.goto(f"{bank.url}/jobs/{job_id}/")
    page.click("[data-action=rerun]")
    page.fill("#id_lr-learning_rate", "0.05")
    page.dispatch_event("#id_lr-learning_rate", "change")
    # Unchanged, every step would be reused; after the change the preview no longer counts the LR.
    page.wait_for_selector("[data-reused=lr]", state="detached")
    assert page.locator("[data-reused=selection]").count() == 1
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-rerun.png", full_page=True)
    page.fill("#id_name", "Default risk LR, slower")
    page.click("[data-action=rerun]")
    page.wait_for_selector("[data-testid=job-run]")
    rerun_id = page.url.rstrip("/").split("/")[-1]
    _approve_at_telco(sites, rerun_id)
    _wait_status(page, "succeeded")
    tasks = {t["node"]: t for t in bank.get(f"/api/jobs/{rerun_id}/")["tasks"] if t["site"] == "ours"}
    assert all(tasks[node]["status"] == "reused" for node in UPSTREAM), {n: t["status"] for n, t in tasks.items()}
    assert tasks["lr"]["status"] == "succeeded"


def test_a_sweep_of_three_learning_rates_gives_a_comparison_table(sites, analyst):
    bank, page, job_id = sites["bank"], analyst, sites["jobs"]["lr"]
    page.goto(f"{bank.url}/jobs/{job_id}/")
    page.click("[data-action=sweep]")
    page.select_option("#id_param1", "lr:learning_rate")
    page.fill("#id_values1", "0.05, 0.1, 0.3")
    page.click("[data-action=start-sweep]")
    page.wait_for_selector("[data-testid=comparison]")
    sweep_url = page.url
    for job in bank.get("/api/jobs/?page_size=50")["results"]:
        if job["status"] == "pending" and job["name"].startswith("Default risk LR (learning_rate="):
            _approve_at_telco(sites, job["id"])

    def all_done():
        page.goto(sweep_url)
        rows = page.locator("[data-testid=sweep-row]")
        states = [rows.nth(i).get_attribute("data-status") for i in range(rows.count())]
        return len(states) == 3 and all(s == "succeeded" for s in states)

    eventually(all_done, seconds=400, interval=3, what="the three jobs of the sweep succeed")
    assert page.locator("[data-best='1']").count() == 1
    assert all(cell != "—" for cell in page.locator("[data-metric=auc]").all_inner_texts())
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-sweep.png", full_page=True)


def test_a_pipeline_stopped_after_the_overlap_waits_for_a_decision_then_continues(sites, analyst):
    bank, page = sites["bank"], analyst
    page.goto(f"{bank.url}/projects/{sites['pid']}/jobs/new/?template=lr")
    page.fill("#id_name", "Gated LR")
    page.fill("#id_lr-max_epochs", "2")
    page.check("#id_pause_after_psi")
    _launch(page)
    page.wait_for_selector("[data-testid=job-run]")
    job_id = page.url.rstrip("/").split("/")[-1]
    _approve_at_telco(sites, job_id)
    _wait_status(page, "paused", seconds=120)
    gate = page.locator("[data-testid=gate]")
    assert "ids are in both tables" in gate.inner_text()
    # Each site pauses once it has its own half of the overlap: telco may be a moment behind.
    assert eventually(lambda: _job_status(sites["telco"], job_id) == "paused", seconds=30, what="telco pauses too")
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-gate.png", full_page=True)
    page.click("[data-action=continue]")
    _wait_status(page, "succeeded")
    assert eventually(lambda: _job_status(sites["telco"], job_id) == "succeeded", seconds=60, what="telco finishes")
