"""Project registration and the public project pages in a real browser."""

import json

import pytest
from django.core.management import call_command

from registry.models import Project
from tests.e2e.conftest import log_in
from tests.registry.projects import square

pytestmark = pytest.mark.django_db(transaction=True)


def test_public_project_list_and_page_with_maps(page_factory, screenshot):
    call_command("load_bijie_demo")
    page = page_factory(locale="zh-CN")
    page.goto("/projects/")
    map_element = page.locator("[data-projects-map]")
    page.wait_for_function(
        "document.querySelector('[data-projects-map]').dataset.loaded !== undefined"
    )
    # Submitted, registered and suspended demo projects are public; the draft is not.
    assert map_element.get_attribute("data-loaded") == "4"
    assert page.locator("table.projects tbody tr").count() == 4
    assert page.locator(".leaflet-overlay-pane path").count() >= 4 + 8
    screenshot(page, "projects-list-zh")

    page.get_by_role("link", name="百里杜鹃林区森林碳汇项目").click()
    page.wait_for_selector("[data-project-map][data-loaded]")
    assert page.get_by_role("heading", name="百里杜鹃林区森林碳汇项目").is_visible()
    assert page.get_by_text("已登记").first.is_visible()
    assert page.get_by_role("heading", name="历史记录").is_visible()
    screenshot(page, "project-detail-zh")


def test_staff_register_a_project_by_drawing_and_by_upload(
    page_factory, screenshot, tmp_path
):
    call_command("load_bijie_demo")
    page = page_factory(locale="en-US")
    log_in(page, "bureau_demo")
    page.get_by_role("link", name="Register a project").click()
    page.get_by_label("Name (Chinese)").fill("龙场林场碳汇项目")
    page.get_by_label("Name (English)").fill("Longchang Forest Farm Carbon Project")
    page.get_by_label("County or district").select_option(label="大方县 Dafang County")
    page.get_by_label("Crediting period start").fill("2022-01-01")
    page.get_by_label("Crediting period end").fill("2051-12-31")

    boundary = tmp_path / "longchang.geojson"
    boundary.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {},
                "geometry": json.loads(square(105.75, 27.05, 800).json),
            }
        )
    )
    page.get_by_label("Boundary file").set_input_files(str(boundary))
    page.get_by_role("button", name="Preview boundary").click()
    page.wait_for_selector(".preview-summary")
    assert "Preview: 64" in page.locator(".preview-summary").inner_text()
    page.wait_for_selector("[data-boundary-widget] path[stroke='#b35900']")
    screenshot(page, "project-form-en")

    page.get_by_role("button", name="Save draft").click()
    page.wait_for_selector("[data-project-map][data-loaded]")
    project = Project.objects.get(name_en="Longchang Forest Farm Carbon Project")
    assert page.get_by_text(project.code).first.is_visible()
    page.get_by_role("button", name="Submit for registration").click()
    page.wait_for_load_state()
    assert page.get_by_text("Project submitted for review.").is_visible()
    project.refresh_from_db()
    assert project.status == "submitted"


def test_an_overlapping_boundary_is_refused_with_the_overlap_on_the_map(
    page_factory, screenshot
):
    call_command("load_bijie_demo")
    registered = Project.objects.get(name_en="Baili Azalea Forest Carbon Sink Project")
    west, south, _east, _north = registered.boundary.extent
    page = page_factory(locale="en-US")
    log_in(page, "bureau_demo")
    page.goto("/projects/new/")
    page.get_by_label("Name (Chinese)").fill("重叠测试")
    page.get_by_label("Name (English)").fill("Overlap test")
    page.get_by_label("County or district").select_option(label="大方县 Dafang County")
    page.get_by_label("Crediting period start").fill("2022-01-01")
    page.get_by_label("Crediting period end").fill("2051-12-31")
    page.locator("details.geojson-field summary").click()
    page.locator("textarea[name=boundary_geojson]").fill(
        square(west + 0.005, south + 0.005, 1000).json
    )
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("button", name="Submit for registration").click()
    page.wait_for_selector(".overlap-report")
    assert registered.code in page.locator(".overlap-report").inner_text()
    assert "counted twice" in page.locator(".messages").inner_text()
    # The overlap is drawn in red on the project's map.
    page.wait_for_selector("[data-project-map] path[stroke='#a4262c']")
    screenshot(page, "project-overlap-refused-en")
