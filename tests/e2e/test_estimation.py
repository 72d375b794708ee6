"""An estimation run in a real browser: form, result table, chart and map."""

import pytest
from django.core.management import call_command

from estimation.models import EstimationRun
from registry.models import Project
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_run_an_estimate_and_see_the_table_chart_and_map(
    page_factory, screenshot
):
    call_command("load_bijie_demo")
    page = page_factory(locale="en-US")
    log_in(page, "bureau_demo")
    page.get_by_role("link", name="Estimation").click()
    page.get_by_role("link", name="New estimation run").click()
    baili = Project.objects.get(name_en__startswith="Baili")
    page.get_by_label("Project").select_option(value=str(baili.pk))
    page.locator("#id_dataset").select_option(index=1)
    page.get_by_label("Monitoring period start").fill("2021-01-01")
    page.get_by_label("Monitoring period end").fill("2025-12-31")
    page.get_by_label("Carbon price (CNY per t CO2e)").fill("95.70")
    page.get_by_role("button", name="Run the estimate").click()
    page.wait_for_selector(".bar-chart")
    run = EstimationRun.objects.order_by("-pk").first()
    assert run.status == "succeeded"
    rows = page.locator("table.results tbody tr")
    assert rows.count() == run.results.count() >= 1
    first = run.results.order_by("rank").first()
    assert first.get_ecosystem_display() in rows.first.inner_text()
    assert page.get_by_role("link", name="Download CSV").is_visible()
    page.wait_for_selector("[data-project-map] img.leaflet-image-layer")
    screenshot(page, "estimation-run-en")


def test_the_run_page_in_chinese(page_factory, screenshot):
    call_command("load_bijie_demo")
    run = EstimationRun.objects.get(project__name_en__startswith="Baili")
    page = page_factory(locale="zh-CN")
    log_in(page, "bureau_demo")
    page.goto(f"/estimation/runs/{run.pk}/")
    assert page.get_by_role("heading", name="各生态系统碳汇").is_visible()
    page.wait_for_selector("[data-project-map] img.leaflet-image-layer")
    screenshot(page, "estimation-run-zh")


def test_the_run_page_shows_progress_then_the_results_by_itself(
    page_factory, monkeypatch
):
    """As with a real worker: the page polls while the run is queued and
    running, and shows the table when it has finished, without a reload."""
    from datetime import date

    from estimation import tasks
    from estimation.models import LandCoverDataset, Methodology
    from estimation.services.runs import create_run, execute_run
    from registry.models import User

    call_command("load_bijie_demo")
    baili = Project.objects.get(name_en__startswith="Baili")
    # The worker is held back: the test plays its part below.
    monkeypatch.setattr(tasks.execute_run_task, "delay", lambda run_id: None)
    run = create_run(
        actor=User.objects.get(username="bureau_demo"),
        project=baili,
        dataset=LandCoverDataset.objects.filter(organization=baili.owner).first(),
        methodology=Methodology.objects.filter(frozen_at__isnull=False).first(),
        period_start=date(2021, 1, 1),
        period_end=date(2025, 12, 31),
    )
    page = page_factory(locale="en-US")
    log_in(page, "bureau_demo")
    page.goto(f"/estimation/runs/{run.pk}/")
    assert page.locator("[data-run-status]").inner_text() == "Queued"
    assert page.locator("progress").get_attribute("value") == "0"

    EstimationRun.objects.filter(pk=run.pk).update(status="running", progress=40)
    page.wait_for_function(
        "document.querySelector('[data-progress-label]').textContent === '40%'"
    )
    assert page.locator("[data-run-status]").inner_text() == "Running"

    # The worker takes only a queued run (the "running" above was the page's
    # view of one); back to queued, then the real computation.
    EstimationRun.objects.filter(pk=run.pk).update(status="queued", progress=0)
    execute_run(run_id=run.pk)
    page.wait_for_selector("table.results")
    assert page.locator("[data-run-status]").inner_text() == "Succeeded"
    assert page.locator("table.results tbody tr").count() == run.results.count()
