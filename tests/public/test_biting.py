"""Tests that bite: each fails on a specific, plausible mistake that the rest of
the suite let through (issue 14): the certificate check reading the whole
journal, certificate ecosystem shares not weighted by tonnes, and the buffer
pool's "used" counting reserved credits as used."""

import csv
import io
from decimal import Decimal as D

import pytest
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from estimation.models import (
    ClassScheme,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    Verification,
)
from public import selectors
from registry.models import Account
from registry.roles import Role
from tests.public.conftest import new_key
from trading import services
from trading.certificates import retire_entries
from trading.models import Certificate, LedgerEntry

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


# The certificate check reads only its own entries ------------------------------------


@pytest.fixture
def rows_fetched(monkeypatch):
    """``rows_fetched()`` is the number of rows every query has handed to Python
    so far: a check that loads the whole journal in one query keeps the query
    count but not this."""
    fetched = {"rows": 0}

    def counting(name):
        def fetch(self, *args, **kwargs):
            result = getattr(self.cursor, name)(*args, **kwargs)
            if name == "fetchone":
                fetched["rows"] += result is not None
            else:
                fetched["rows"] += len(result)
            return result

        return fetch

    for name in ("fetchone", "fetchmany", "fetchall"):
        monkeypatch.setattr(CursorWrapper, name, counting(name), raising=False)
    return lambda: fetched["rows"]


@pytest.fixture
def private_throttles(monkeypatch):
    """The anonymous API throttle counts in a private cache (Redis is shared
    in the production-stack stage)."""
    from django.core.cache.backends.locmem import LocMemCache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "cache", LocMemCache("h5-public-biting", {})
    )


def _cost(client, url, rows_fetched) -> tuple[int, int, object]:
    before = rows_fetched()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), rows_fetched() - before, response


@pytest.mark.parametrize("where", ["page", "api"])
def test_checking_a_certificate_reads_the_same_rows_however_long_the_journal(
    where, retire, client, rows_fetched, private_throttles
):
    certificate = retire(quantity=100)
    retire(quantity=1)  # an entry after it: the head is not needed either time
    url = (
        reverse("public:certificate-verify", args=[certificate.token])
        if where == "page"
        else f"/api/v1/certificates/{certificate.number}/"
    )
    client.get(url)
    short_queries, short_rows, short = _cost(client, url, rows_fetched)
    journal_before = LedgerEntry.objects.count()

    for _ in range(20):
        retire(quantity=1)  # four entries each: issue, buffer, reserve, retire
    queries, rows, response = _cost(client, url, rows_fetched)

    assert LedgerEntry.objects.count() == journal_before + 80
    assert (queries, rows) == (short_queries, short_rows)
    assert rows == 2  # the certificate and its one retire entry
    if where == "page":
        assert short.context["check"].valid
        assert response.context["check"].valid
    else:
        assert short.json()["valid"] is True
        assert response.json()["valid"] is True


# Ecosystem shares weighted by tonnes ------------------------------------------------


def _issued_from_estimate(batch, *, actor, verifier, sinks: dict[str, str]):
    """Record that ``batch`` was issued from a verified estimate whose sink per
    ecosystem (t CO2e/yr) is ``sinks``."""
    project = batch.project
    dataset = LandCoverDataset.objects.create(
        name_zh="测试土地覆盖",
        name_en="Test land cover",
        product="modis-igbp",
        year=2019,
        scheme=ClassScheme.objects.get(slug="modis-igbp"),
        kind="raster",
        file="landcover/test.tif",
        original_name="test.tif",
        size_bytes=1,
        sha256="0" * 64,
        organization=project.owner,
        uploaded_by=actor,
    )
    run = EstimationRun.objects.create(
        project=project,
        organization=project.owner,
        boundary=project.boundary,
        dataset=dataset,
        methodology=Methodology.objects.get(is_default=True),
        period_start=batch.monitoring_start,
        period_end=batch.monitoring_end,
        status=EstimationRun.Status.SUCCEEDED,
        created_by=actor,
    )
    total = sum(D(sink) for sink in sinks.values())
    for rank, (ecosystem, sink) in enumerate(sinks.items(), start=1):
        EcosystemResult.objects.create(
            run=run,
            ecosystem=ecosystem,
            rank=rank,
            area_ha=D(10),
            share=D(sink) / total,
            sink_t_c_per_year=D(sink) * 12 / 44,
            sink_t_co2e_per_year=D(sink),
            sink_t_co2e_period=D(sink),
        )
    now = timezone.now()
    Verification.objects.create(
        run=run,
        project=project,
        monitoring_start=batch.monitoring_start,
        monitoring_end=batch.monitoring_end,
        status=Verification.Status.ISSUED,
        submitted_by=actor,
        verifier=verifier,
        decided_at=now,
        batch=batch,
        issued_by=actor,
        issued_at=now,
    )


def test_certificate_ecosystem_shares_are_weighted_by_the_tonnes_retired(
    issue, seller, seller_account, admin, second_admin, make_user, client
):
    """900 t from a forest-heavy batch and 100 t from a farmland/wetland batch:
    the certificate's mix is each batch's mix weighted by the tonnes retired
    from it (not an average of the batches, nor weighted by batch size)."""
    verifier = make_user(role=Role.VERIFIER)
    forest_heavy = issue(quantity=900, buffer=0)
    mixed = issue(quantity=1000, buffer=0)
    _issued_from_estimate(
        forest_heavy,
        actor=seller,
        verifier=verifier,
        sinks={"forest": "90", "grassland": "10"},
    )
    _issued_from_estimate(
        mixed, actor=seller, verifier=verifier, sinks={"farmland": "5", "wetland": "5"}
    )
    request = services.request_retirement(
        actor=seller,
        from_account=seller_account,
        quantity=1000,
        beneficiary="毕节市绿色能源有限公司",
        beneficiary_public=True,
        purpose="voluntary",
        reporting_year=2025,
        idempotency_key=new_key(),
    )
    services.approve_request(actor=admin, request=request)
    certificate = Certificate.objects.get(trade_request=request)
    entries = retire_entries(certificate)
    assert [(entry.batch_id, entry.quantity) for entry in entries] == [
        (forest_heavy.pk, 900),
        (mixed.pk, 100),
    ]

    assert selectors.certificate_ecosystems(entries) == [
        {"ecosystem": "forest", "share": D("0.8100")},
        {"ecosystem": "grassland", "share": D("0.0900")},
        {"ecosystem": "farmland", "share": D("0.0500")},
        {"ecosystem": "wetland", "share": D("0.0500")},
    ]
    page = client.get(
        reverse("public:certificate", args=[certificate.token]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "Forest 81%, Grassland 9%, Farmland 5%, Wetland 5%" in page


# The buffer pool: reserved is neither balance nor used -----------------------------


def test_buffer_pool_used_excludes_credits_reserved_by_a_pending_cancellation(
    issue, client, admin, second_admin
):
    issue(quantity=1000, buffer=100)
    issue(quantity=500, buffer=40)
    buffer = Account.objects.get(kind=Account.Kind.BUFFER_POOL)
    settled = services.request_cancellation(
        actor=admin,
        from_account=buffer,
        quantity=30,
        note="Fire in compartment 12",
        idempotency_key=new_key(),
    )
    services.approve_request(actor=second_admin, request=settled)
    services.request_cancellation(  # pending: reserved, not yet used
        actor=admin,
        from_account=buffer,
        quantity=20,
        note="Pests in compartment 7",
        idempotency_key=new_key(),
    )

    (row,) = selectors.list_buffer_pool()
    assert (row["withheld"], row["balance"], row["reserved"], row["used"]) == (
        140,
        90,
        20,
        30,
    )
    rows = _csv(client.get(reverse("public:buffer-pool-csv")))
    assert rows[1][3:] == ["140", "90", "20", "30"]
    page = client.get(reverse("public:buffer-pool")).content.decode()
    assert (
        '<td class="num">140</td><td class="num">90</td>'
        '<td class="num">20</td><td class="num">30</td>'
    ) in page
