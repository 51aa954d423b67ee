"""In a real headless Chromium: an analyst reads the results of a finished job as charts, their numbers and CSVs.

The job's tasks hold the metrics and models of real component runs (tests/site/test_job_presenters.py runs
them), so the charts are drawn from exactly what a site stores.
"""

import csv
import io

import pytest

from tests.conftest import PASSWORD
from tests.site.job_scene import job_project
from tests.site.test_job_presenters import make_finished_job, run_sample_job

from .chromium import SCREENSHOTS, launched, new_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# How many pixels of a canvas are painted: a chart that drew nothing has none.
PAINTED = """(canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { n++; } }
  return n;
}"""


@pytest.fixture
def page():
    with launched() as browser:
        page = new_page(browser, viewport={"width": 1280, "height": 900}, accept_downloads=True)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        yield page
        page.context.close()


@pytest.fixture(scope="module")
def runs():
    return run_sample_job()


@pytest.fixture
def finished_job(admin, alice, make_dataset, settings, runs):
    project, dataset = job_project(admin=admin, members=[alice], make_dataset=make_dataset, settings=settings)
    project.ours = str(dataset.pk)
    return make_finished_job(project, alice, runs, name="Credit risk LR")


def _sign_in(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def _drawn(page, testid):
    figure = page.locator(f"[data-testid={testid}]")
    figure.locator("xpath=self::*[@data-drawn]").wait_for()
    return figure


# The job is made before the browser starts: Playwright's event loop would otherwise be running in this
# thread while the dataset fixture pushes its status.
def test_an_analyst_reads_a_finished_jobs_results_as_charts(finished_job, runs, page, live_server):
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/jobs/{finished_job.pk}/")

    # The curves and bars are drawn, not left blank.
    for testid in ("chart-evaluation-roc", "chart-evaluation-ks", "chart-binning-iv", "chart-lr-loss",
                   "chart-boost-importance", "chart-evaluation-lift"):
        canvas = _drawn(page, testid).locator("canvas")
        assert canvas.evaluate(PAINTED) > 2000, testid
    assert page.js_errors == []
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-job-results.png", full_page=True)

    # Key figures are in the page's number format.
    auc = runs["evaluation"]["guest"]["outputs"]["metrics"]["data"]["auc"]
    facts = page.locator("[data-testid=result-evaluation] .result-facts").inner_text()
    assert f"{auc:.4f}"[:5] in facts

    # The numbers of a chart are one click away.
    roc = page.locator("[data-testid=chart-evaluation-roc]")
    numbers = page.locator("[data-testid=numbers-evaluation-roc]")
    assert numbers.is_hidden()
    toggle = roc.get_by_role("button", name="Show numbers")
    toggle.click()
    numbers.wait_for()
    assert roc.get_by_role("button", name="Hide numbers").get_attribute("aria-expanded") == "true"
    rows = numbers.locator("tbody tr")
    assert rows.count() > 20
    assert rows.first.locator("td").first.inner_text() == "Validation rows"
    assert rows.last.locator("td").nth(3).inner_text() == "100%"  # the curve ends at (1, 1)

    # ... and so is a CSV of them, with the same numbers as the binning metrics.
    iv = page.locator("[data-testid=chart-binning-iv]")
    with page.expect_download() as info:
        iv.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "Credit risk LR-binning-iv.csv"
    text = open(download.path(), encoding="utf-8-sig").read()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Feature", "Whose", "IV", "Strength"]
    binning = runs["binning"]["guest"]["outputs"]["metrics"]
    expected = {**binning["iv"], **binning["host_iv"]}
    assert {row[0]: float(row[2]) for row in table[1:]} == pytest.approx(expected)

    # The confusion matrix follows the threshold slider.
    confusion = _drawn(page, "chart-evaluation-confusion")
    report = runs["evaluation"]["guest"]["outputs"]["metrics"]["data"]
    cell = {key: confusion.locator(f"[data-cell={key}] strong") for key in ("tp", "fp", "fn", "tn")}
    assert [[int(cell["tn"].inner_text()), int(cell["fp"].inner_text())],
            [int(cell["fn"].inner_text()), int(cell["tp"].inner_text())]] == report["confusion"]["matrix"]
    slider = confusion.locator("[data-role=threshold]")
    assert confusion.locator("[data-role=threshold-value]").inner_text() == "0.500"
    slider.focus()
    slider.press("Home")  # the lowest threshold: every row is flagged
    assert int(cell["tp"].inner_text()) == report["n_positive"]
    assert int(cell["fn"].inner_text()) == 0
    assert int(cell["tn"].inner_text()) == 0
    slider.press("End")  # the highest: hardly anything is flagged
    assert int(cell["fp"].inner_text()) + int(cell["tp"].inner_text()) < report["n_positive"] / 2
    assert float(confusion.locator("[data-role=threshold-value]").inner_text()) > 0.5

    # The WOE table follows the chosen feature.
    woe = _drawn(page, "chart-binning-woe")
    woe_numbers = page.locator("[data-testid=numbers-binning-woe]")
    assert woe_numbers.is_visible()  # open from the start: the table is the point
    woe.locator("select").select_option(label="mean_radius (ours)")
    first_bin = woe_numbers.locator("tbody tr").first.locator("td").first.inner_text()
    assert first_bin.startswith("(-inf, ")
    assert woe.locator("canvas").evaluate(PAINTED) > 1000

    # Drawing again (results swapped in later, or included twice) leaves every chart as it was.
    page.evaluate("window.FedWebCharts.draw(document)")
    assert numbers.locator("table").count() == 1
    assert page.js_errors == []


def test_the_results_are_usable_on_a_phone(finished_job, page, live_server):
    _sign_in(page, live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/jobs/{finished_job.pk}/")
    roc = _drawn(page, "chart-evaluation-roc")
    _drawn(page, "chart-binning-iv")
    _drawn(page, "chart-evaluation-confusion")
    for testid in ("chart-evaluation-roc", "chart-binning-iv", "chart-evaluation-confusion",
                   "chart-statistics-features"):
        box = page.locator(f"[data-testid={testid}]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, testid  # nothing spills off the screen
    assert roc.locator("canvas").evaluate(PAINTED) > 2000
    # Wide tables scroll inside their box instead of widening the page.
    results_width = page.locator("[data-testid=results]").evaluate("el => el.scrollWidth")
    assert results_width <= 390
    page.locator("[data-testid=chart-evaluation-confusion] [data-role=threshold]").focus()
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-job-results-phone.png", full_page=True)
    assert page.js_errors == []
