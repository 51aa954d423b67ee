"""In a real headless Chromium, a month in the life of a dataset: its page reads well (counts with
separators, ids summarised, a wide preview scrolling in its own box), a new file becomes version 2,
a file with other columns fails saying what differs, and the admin moves the project to version 2
(in Chinese) while an analyst with a grant reads the new version and cannot upload one."""

import pytest

from tests.conftest import PASSWORD

from .chromium import launched
from .scene import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLUMNS = ["id", "y"] + [f"measurement_{i:02d}" for i in range(10)]  # twelve columns


def _csv(rows: int, start: int = 0, columns=COLUMNS) -> str:
    def value(name, r):
        if name == "id":
            return f"C{r:07d}"
        return str(r % 2) if name == "y" else f"{r * 1.25 + len(name):.2f}"

    lines = [",".join(columns)] + [",".join(value(c, r) for c in columns) for r in range(start, start + rows)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def browser():
    with launched() as running:
        yield running


def _signed_in(browser, live_server, username, **options):
    return signed_in(browser, live_server, username, PASSWORD, **{"viewport": {"width": 1024, "height": 800}, **options})


@pytest.fixture
def project(admin):
    from fedweb.proxy import pki
    from projects import pairing, services
    from projects.models import Project, ProjectMember, ProjectStatus

    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    invitation = Project.objects.create(name="Churn together", purpose="Predict churn", partner=partner,
                                        initiator="telco", label_holder="telco", status=ProjectStatus.INVITED,
                                        status_changed_by="telco")
    project = services.accept(user=admin, project=invitation)
    return project, ProjectMember


def test_a_dataset_gets_a_new_version_and_the_admin_moves_the_project_to_it(browser, live_server, admin, alice, grace,
                                                                           project, make_dataset, tmp_path):
    from datasets import services
    from projects import services as project_services

    project, members = project
    january = make_dataset(alice, _csv(1_234), name="Customers", id_column="id")
    assert january.is_ready, january.error_text
    project_services.authorise_table(user=admin, project=project, dataset=january)
    services.grant(by=admin, dataset=january, user=grace)
    for member in (alice, grace):
        members.objects.create(project=project, user=member)

    page = _signed_in(browser, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/{january.pk}/")
    assert page.locator("[data-testid=row-count]").inner_text() == "1,234"
    assert page.locator("[data-testid=id-distinct]").inner_text() == "1,234 different ids, each once"
    assert "Churn together" in page.locator("[data-testid=used-in]").inner_text()
    # Twelve columns: the preview scrolls inside its own box, the page itself does not get wider.
    box = page.locator("[data-testid=preview-box]")
    widths = box.evaluate("b => ({scroll: b.scrollWidth, client: b.clientWidth, right: b.getBoundingClientRect().right,"
                          " page: document.documentElement.scrollWidth, view: window.innerWidth})")
    assert widths["scroll"] > widths["client"] and widths["right"] <= widths["view"], widths
    assert widths["page"] <= widths["view"], widths
    box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    last = page.locator("[data-testid=preview] th").last
    assert last.inner_text() == "measurement_09" and last.is_visible()

    # February's file: the same columns (in another order), more rows.
    february = tmp_path / "customers-february.csv"
    columns = ["y", "id"] + COLUMNS[2:]
    february.write_text(_csv(1_500, start=1_000, columns=columns), encoding="utf-8")
    page.set_input_files("[data-testid=version-form] input[type=file]", str(february))
    page.click("[data-testid=version-form] button[type=submit]")
    page.wait_for_url(lambda url: str(january.pk) not in url and "/datasets/" in url)
    page.locator("[data-testid=status]").filter(has_text="Ready").wait_for()
    assert page.locator("[data-testid=version]").inner_text() == "2 of 2"
    assert page.locator("[data-testid=row-count]").inner_text() == "1,500"
    versions = page.locator("[data-testid=versions]").inner_text()
    assert "v1" in versions and "v2" in versions and "1,234" in versions and "1,500" in versions
    february_url = page.url

    # March's file lost a column and gained one: it fails, saying exactly which.
    march = tmp_path / "customers-march.csv"
    march.write_text(_csv(10, columns=COLUMNS[:-1] + ["region"]), encoding="utf-8")
    page.set_input_files("[data-testid=version-form] input[type=file]", str(march))
    page.click("[data-testid=version-form] button[type=submit]")
    page.wait_for_url(lambda url: url != february_url and "/datasets/" in url)
    error = page.locator("[data-testid=error]")
    error.wait_for()
    words = error.inner_text()
    assert "not those of version 2" in words and "1 other column is missing: “measurement_09”." in words, words
    assert "1 column is not in version 2: “region”." in words, words
    # The list still leads to February, and says March failed.
    page.goto(f"{live_server.url}/datasets/")
    row = page.locator("[data-testid=datasets] tbody tr", has_text="Customers")
    assert row.count() == 1
    assert row.locator("[data-testid=version]").inner_text() == "v2 v3: Failed"
    assert row.locator("[data-testid=rows]").inner_text() == "1,500"
    page.context.close()

    # The admin, in Chinese: the project still uses version 1 and offers the move.
    type(admin).objects.filter(pk=admin.pk).update(language="zh-hans")
    page = _signed_in(browser, live_server, "admin")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    card = page.locator("[data-testid=our-table]")
    assert "第 1 版，共 3 版" in card.inner_text() and "有更新的版本" in card.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=move-version] button")
    page.wait_for_load_state()
    page.locator(".messages").filter(has_text="第 2 版").wait_for()
    card = page.locator("[data-testid=our-table]")
    assert card.count() == 1
    assert "第 2 版，共 3 版" in card.inner_text() and "从第 1 版切换而来" in card.inner_text()
    assert page.locator("[data-testid=move-version]").count() == 0
    # A failed version offers no access to give.
    page.goto(f"{live_server.url}/datasets/")
    page.click("[data-testid=datasets] >> text=v3")
    assert page.locator("[data-testid=grant-form]").count() == 0
    assert "还没有可以授权的内容" in page.locator("[data-testid=no-grant]").inner_text()
    page.context.close()

    # Grace's grant on January covers February; she reads it but cannot upload a version.
    page = _signed_in(browser, live_server, "grace")
    page.goto(f"{live_server.url}/datasets/")
    page.click("[data-testid=datasets] >> text=Customers")
    assert page.url == february_url
    assert page.locator("[data-testid=version-form]").count() == 0
    assert "version 2 (this one)" in page.locator("[data-testid=used-in]").inner_text()
    # Her own "Customers" is flagged, with the other one's owner and date to tell them apart.
    mine = tmp_path / "customers.csv"
    mine.write_text(_csv(3), encoding="utf-8")
    page.goto(f"{live_server.url}/datasets/")
    page.set_input_files("#id_file", str(mine))
    page.fill("#id_name", "Customers")
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url(lambda url: url != f"{live_server.url}/datasets/" and "/datasets/" in url)
    note = page.locator("[data-testid=same-name]").inner_text()
    assert "Another dataset is also named “Customers”" in note and "owner alice, uploaded" in note, note
    assert "This one: owner grace" in note
    page.context.close()
