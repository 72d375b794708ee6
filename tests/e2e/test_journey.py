"""The whole journey in a real browser, in Chinese, the way its people take it:
register a project, estimate its sink, verify and issue, sell, retire and prove
the retirement; then the key pages in English. The screenshots illustrate
docs/guide.md."""

import io
import json

import pytest
from django.core.management import call_command
from django.utils import translation

from estimation.models import (
    ClassScheme,
    EstimationRun,
    LandCoverDataset,
    Verification,
)
from registry.models import Account, Project
from tests.e2e.conftest import log_in
from tests.estimation.conftest import write_landcover
from tests.registry.projects import square
from trading.models import Certificate
from trading.selectors import get_account_balance

pytestmark = pytest.mark.django_db(transaction=True)

BENEFICIARY = "毕节市百里杜鹃旅游开发有限公司"
PROJECT_ZH = "龙场林场碳汇项目"
PROJECT_EN = "Longchang Forest Farm Carbon Project"


def zh(text: str) -> str:
    """What the Chinese pages say for ``text``: the tests read the screen as a
    Chinese user does, through the project's own catalogue."""
    with translation.override("zh-hans"):
        return translation.gettext(text)


def test_the_whole_journey_in_chinese_then_in_english(
    page_factory, screenshot, tmp_path
):
    call_command("load_bijie_demo")

    # 1. Bureau staff register a project by uploading its boundary, and submit it.
    staff = page_factory(locale="zh-CN")
    log_in(staff, "bureau_demo")
    staff.get_by_role("link", name=zh("Register a project")).click()
    staff.get_by_label(zh("Name (Chinese)")).fill(PROJECT_ZH)
    staff.get_by_label(zh("Name (English)")).fill(PROJECT_EN)
    staff.get_by_label(zh("County or district")).select_option(
        label="大方县 Dafang County"
    )
    staff.get_by_label(zh("Crediting period start")).fill("2021-01-01")
    staff.get_by_label(zh("Crediting period end")).fill("2050-12-31")
    boundary = tmp_path / "longchang.geojson"
    geometry = json.loads(square(105.75, 27.05, 800).json)
    boundary.write_text(json.dumps({"type": "Feature", "geometry": geometry}))
    staff.get_by_label(zh("Boundary file")).set_input_files(str(boundary))
    staff.get_by_role("button", name=zh("Preview boundary")).click()
    staff.wait_for_selector(".preview-summary")
    staff.get_by_role("button", name=zh("Save draft")).click()
    staff.wait_for_selector("[data-project-map][data-loaded]")
    screenshot(staff, "guide-project-draft-zh")
    staff.get_by_role("button", name=zh("Submit for registration")).click()
    assert (
        zh("Project submitted for review.") in staff.locator(".messages").inner_text()
    )
    project = Project.objects.get(name_en=PROJECT_EN)
    assert project.status == Project.Status.SUBMITTED

    # ... and a registry admin registers it.
    admin = page_factory(locale="zh-CN")
    log_in(admin, "registry_admin_demo")
    admin.goto(f"/projects/{project.code}/")
    admin.get_by_role("button", name=zh("Approve and register")).click()
    admin.wait_for_selector(".messages")
    assert zh("Registered") in admin.locator(".page-head").first.inner_text()
    project.refresh_from_db()
    assert project.status == Project.Status.REGISTERED

    # 2. Staff upload a land-cover raster and estimate the project's sink.
    raster = write_landcover(
        tmp_path / "longchang-2023.tif", west=105.735, north=27.062
    )
    staff.goto("/estimation/datasets/new/")
    staff.get_by_label(zh("Name (Chinese)")).fill("龙场 2023 土地覆盖")
    staff.get_by_label(zh("Name (English)")).fill("Longchang land cover 2023")
    staff.get_by_label(zh("Product")).select_option(value="modis-igbp")
    staff.get_by_label(zh("Year")).fill("2023")
    staff.get_by_label(zh("Class scheme")).select_option(
        value=str(ClassScheme.objects.get(slug="modis-igbp").pk)
    )
    staff.get_by_label(zh("File")).set_input_files(str(raster))
    staff.get_by_role("button", name=zh("Upload")).click()
    staff.wait_for_selector(".messages")
    dataset = LandCoverDataset.objects.get(name_en="Longchang land cover 2023")
    staff.goto(f"/estimation/runs/new/?project={project.code}")
    staff.locator("#id_dataset").select_option(value=str(dataset.pk))
    staff.get_by_label(zh("Monitoring period start")).fill("2021-01-01")
    staff.get_by_label(zh("Monitoring period end")).fill("2025-12-31")
    staff.get_by_label(zh("Carbon price (CNY per t CO2e)")).fill("95.70")
    staff.get_by_role("button", name=zh("Run the estimate")).click()
    staff.wait_for_selector(".bar-chart")
    staff.wait_for_selector("[data-project-map] img.leaflet-image-layer")
    run = EstimationRun.objects.get(project=project)
    assert run.status == EstimationRun.Status.SUCCEEDED
    rows = staff.locator("table.results tbody tr")
    assert rows.count() == run.results.count() >= 2
    assert zh("Forest") in rows.first.inner_text()
    screenshot(staff, "guide-estimation-run-zh")
    staff.get_by_role("button", name=zh("Submit for verification")).click()
    staff.wait_for_url("**/estimation/verifications/*/")
    verification = Verification.objects.get(run=run)

    # 3. A verifier approves it; the registry admin issues the batch.
    verifier = page_factory(locale="zh-CN")
    log_in(verifier, "verifier_demo")
    verifier.goto(f"/estimation/verifications/{verification.pk}/")
    verifier.wait_for_selector("[data-project-map] img.leaflet-image-layer")
    assert run.dataset.sha256 in verifier.locator("main").inner_text()
    verifier.get_by_label(zh("Findings (required to reject)")).fill(
        "边界、土地覆盖和系数已核对。"
    )
    verifier.get_by_role("button", name=zh("Approve"), exact=True).click()
    verifier.wait_for_selector(".messages")
    screenshot(verifier, "guide-verification-approved-zh")
    verification.refresh_from_db()
    assert verification.status == Verification.Status.APPROVED

    admin.goto(f"/estimation/verifications/{verification.pk}/")
    admin.get_by_role("button", name=zh("Issue credits")).click()
    admin.wait_for_url("**/ledger/batches/*/")
    batch = project.batches.get()
    assert batch.serial_label in admin.locator("h1").inner_text()
    assert batch.buffer_quantity > 0
    screenshot(admin, "guide-batch-zh")
    # The buffer share appears in the public buffer pool.
    admin.goto("/public/buffer-pool/")
    pool_row = admin.locator("tr", has_text=project.code)
    assert str(batch.buffer_quantity) in pool_row.inner_text()

    # 4. The owner sells to the buyer at a price; the admin settles it.
    seller_account = project.owner.accounts.get(kind=Account.Kind.HOLDING)
    buyer_account = Account.objects.get(
        organization__name_en__startswith="Guizhou Lvzhu", kind=Account.Kind.HOLDING
    )
    seller_before = get_account_balance(account=seller_account)["active"]
    buyer_before = get_account_balance(account=buyer_account)["active"]
    staff.goto(f"/ledger/requests/transfer/?account={seller_account.number}")
    staff.get_by_label(zh("Quantity (t CO2e)")).fill("30")
    staff.get_by_label(zh("Vintage")).fill(str(batch.vintage))
    staff.get_by_label(zh("To account number")).fill(buyer_account.number)
    staff.get_by_label(zh("Price (CNY per t CO2e)")).fill("92.50")
    staff.get_by_role("button", name=zh("Request the transfer")).click()
    staff.wait_for_selector(".messages")
    screenshot(staff, "guide-transfer-requested-zh")

    admin.get_by_role("link", name=zh("Review queue")).click()
    item = admin.locator(".review-item", has_text=seller_account.number).first
    assert "30 t CO2e" in item.inner_text()
    screenshot(admin, "guide-review-queue-zh")
    item.get_by_role("button", name=zh("Approve and settle")).click()
    admin.wait_for_selector(".messages")
    assert get_account_balance(account=seller_account)["active"] == seller_before - 30
    assert get_account_balance(account=buyer_account)["active"] == buyer_before + 30
    admin.goto(f"/ledger/accounts/{seller_account.number}/")
    assert "92.50" in admin.locator("main").inner_text()

    # 5. The buyer retires part of it for a named beneficiary; the admin settles
    # it; the certificate opens from its QR code on a phone, and the PDF downloads.
    buyer = page_factory(locale="zh-CN")
    log_in(buyer, "buyer_demo")
    buyer.get_by_role("link", name=zh("My credits")).click()
    screenshot(buyer, "guide-buyer-dashboard-zh")
    buyer.get_by_role("link", name=zh("Retire credits")).first.click()
    buyer.get_by_label(zh("Quantity (t CO2e)")).fill("12")
    buyer.get_by_label(zh("Vintage")).fill(str(batch.vintage))
    buyer.locator("#id_beneficiary").fill(BENEFICIARY)
    buyer.get_by_label(zh("Purpose")).select_option(value="voluntary")
    buyer.get_by_label(zh("Reporting year")).fill("2025")
    buyer.get_by_role("button", name=zh("Request the retirement")).click()
    buyer.wait_for_selector(".messages")

    admin.get_by_role("link", name=zh("Review queue")).click()
    item = admin.locator(".review-item", has_text=BENEFICIARY).first
    item.get_by_role("button", name=zh("Approve and settle")).click()
    admin.wait_for_selector(".messages")
    certificate = Certificate.objects.get(beneficiary=BENEFICIARY)
    assert certificate.quantity == 12

    buyer.get_by_role("link", name=zh("My credits")).click()
    buyer.get_by_role("link", name=certificate.number).click()
    buyer.wait_for_selector(".certificate")
    assert BENEFICIARY in buyer.locator(".beneficiary").inner_text()
    screenshot(buyer, "guide-certificate-zh")
    verify_url = _decode_qr(buyer.locator(".certificate-verify .qr").screenshot())
    assert verify_url.endswith(f"/verify/{certificate.token}/")
    download = buyer.request.get(f"/certificates/{certificate.token}/certificate.pdf")
    assert download.ok
    assert download.headers["content-type"] == "application/pdf"
    assert download.body().startswith(b"%PDF")

    phone = page_factory(locale="zh-CN", width=390, height=844)
    phone.goto(verify_url)
    assert phone.locator("[data-valid]").get_attribute("data-valid") == "true"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "guide-verify-phone-zh")

    # 6. The same journey's key pages in English, after switching language.
    buyer.get_by_role("button", name="English").click()
    buyer.wait_for_load_state()
    buyer.goto(f"/certificates/{certificate.token}/")
    assert "Retirement certificate" in buyer.locator("main").inner_text()
    assert BENEFICIARY in buyer.locator(".beneficiary").inner_text()
    buyer.goto(f"/ledger/batches/{batch.pk}/")
    assert "Where the credits are now" in buyer.locator("main").inner_text()
    buyer.goto(f"/projects/{project.code}/")
    assert buyer.get_by_role("heading", name=PROJECT_EN).is_visible()
    assert "History" in buyer.locator("main").inner_text()
    screenshot(buyer, "guide-project-en")
    # A buyer may not open the verifier's page: a clear page, not a dead end.
    response = buyer.goto(f"/estimation/verifications/{verification.pk}/")
    assert response.status == 404
    assert "Page not found" in buyer.locator("main").inner_text()
    buyer.goto("/ledger/dashboard/")
    assert "Retirement certificates" in buyer.locator("main").inner_text()
    screenshot(buyer, "guide-buyer-dashboard-en")


def test_a_transfer_above_the_balance_is_refused_on_the_page(page_factory):
    call_command("load_bijie_demo")
    project = Project.objects.get(name_en__startswith="Baili")
    account = project.owner.accounts.get(kind=Account.Kind.HOLDING)
    buyer_account = Account.objects.get(
        organization__name_en__startswith="Guizhou Lvzhu", kind=Account.Kind.HOLDING
    )
    available = get_account_balance(account=account)["active"]
    page = page_factory(locale="zh-CN")
    log_in(page, "bureau_demo")
    page.goto(f"/ledger/requests/transfer/?account={account.number}")
    page.get_by_label(zh("Quantity (t CO2e)")).fill(str(available + 1))
    page.get_by_label(zh("To account number")).fill(buyer_account.number)
    page.get_by_label(zh("Price (CNY per t CO2e)")).fill("90")
    page.get_by_role("button", name=zh("Request the transfer")).click()
    page.wait_for_load_state()
    error = page.locator(".error, .errorlist").first.inner_text()
    assert f"{available:,}" in error
    assert get_account_balance(account=account)["active"] == available
    assert get_account_balance(account=account)["reserved"] == 0


def _decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert results, "no QR code found in the image"
    return results[0].text
