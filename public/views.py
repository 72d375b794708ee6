"""The public registry: pages anyone can read without an account. Thin: each
parses its input, calls selectors, renders. Unknown or malformed numbers get
a page that says so (404 or 400), never an error."""

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from common.quantities import WHOLE, rounded
from common.spreadsheets import csv_writer
from estimation.models import Ecosystem
from public import figures, pdf, selectors
from registry.models import Project
from trading import serials
from trading.certificates import check_certificate, retire_entries
from trading.models import Certificate, CreditBlock, LedgerEntry, serial_label

PER_PAGE = 50
MAX_QUERY = 100
PDF_CACHE_SECONDS = 24 * 3600
ECOSYSTEM_LABELS = {**dict(Project.Ecosystem.choices), **dict(Ecosystem.choices)}


def _page(request, items):
    # get_page turns a malformed or huge page number into the first or last page.
    return Paginator(items, PER_PAGE).get_page(request.GET.get("page"))


def _ecosystem_text(ecosystems: list[dict]) -> str:
    return ", ".join(
        f"{ECOSYSTEM_LABELS.get(item['ecosystem'], item['ecosystem'])} "
        f"{(item['share'] * 100):.0f}%"
        for item in ecosystems
    )


def _beneficiary(certificate: Certificate) -> str:
    return certificate.public_beneficiary or _(
        "Anonymous (the beneficiary chose not to be named)"
    )


def _summaries(certificates) -> list[dict]:
    """Rows for lists of certificates with prefetched ``retire_entries``."""
    rows = []
    for certificate in certificates:
        entries = certificate.trade_request.retire_entries
        projects = {entry.batch.project.code: entry.batch.project for entry in entries}
        rows.append(
            {
                "certificate": certificate,
                "projects": list(projects.values()),
                "vintages": sorted({entry.batch.vintage for entry in entries}),
            }
        )
    return rows


class _Echo:
    def write(self, value):
        return value


def _csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    writer = csv_writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# Search and lookup -----------------------------------------------------------------


@require_GET
def search(request):
    query = request.GET.get("q", "").strip()
    context = {"query": query}
    status = 200
    if len(query) > MAX_QUERY:
        context["error"] = _(
            "Search for at most %(count)s characters: a project code or name, a "
            "serial number, a certificate number or a beneficiary."
        ) % {"count": MAX_QUERY}
        status = 400
    elif query:
        if figures.is_certificate_number(query):
            certificate = selectors.get_certificate_by_number(number=query)
            if certificate is not None:
                return redirect("public:certificate", token=certificate.token)
        results = selectors.search(query=query)
        context.update(results)
        context["retirements"] = _summaries(results["certificates"])
        context["found"] = any(
            results[key] for key in ("projects", "batches", "certificates")
        )
    else:
        context["recent_batches"] = list(selectors.list_batches()[:5])
        context["recent_retirements"] = _summaries(selectors.list_retirements()[:5])
    return render(request, "public/search.html", context, status=status)


@require_GET
def serial_lookup(request):
    text = request.GET.get("serial", "").strip()
    context = {"text": text[:40]}
    if not text:
        return render(request, "public/serial.html", context)
    serial = serials.parse_serial(text)
    if serial is None:
        context["error"] = _(
            "A serial number is a whole number of up to 18 digits, e.g. 4210."
        )
        return render(request, "public/serial.html", context, status=400)
    found = selectors.lookup_serial(serial=serial)
    if found is None:
        context["error"] = _("No credit has the serial number %(serial)s.") % {
            "serial": serial
        }
        return render(request, "public/serial.html", context, status=404)
    block = found.block
    context.update(
        {
            "found": found,
            "state": CreditBlock.State(block.state).label if block else "",
            "account": block.account if block else None,
            "label": serial_label(
                found.batch.project.code, found.batch.vintage, serial, serial
            ),
        }
    )
    return render(request, "public/serial.html", context)


# Lists -------------------------------------------------------------------------------


@require_GET
def retirements(request):
    page = _page(request, selectors.list_retirements())
    return render(
        request,
        "public/retirements.html",
        {"page": page, "rows": _summaries(page.object_list)},
    )


@require_GET
def retirements_csv(request):
    def rows():
        certificates = selectors.list_retirements().iterator(chunk_size=2000)
        for row in _summaries(certificates):
            certificate = row["certificate"]
            yield [
                certificate.number,
                timezone.localtime(certificate.retired_at).date().isoformat(),
                certificate.public_beneficiary,
                certificate.get_purpose_display(),
                certificate.reporting_year or "",
                certificate.quantity,
                " ".join(project.code for project in row["projects"]),
                " ".join(str(vintage) for vintage in row["vintages"]),
                request.build_absolute_uri(
                    reverse("public:certificate", args=[certificate.token])
                ),
            ]

    return _csv_response(
        "retirements.csv",
        [
            "certificate",
            "retired_on",
            "beneficiary",
            "purpose",
            "reporting_year",
            "quantity_t_co2e",
            "projects",
            "vintages",
            "certificate_url",
        ],
        rows(),
    )


@require_GET
def batches(request):
    return render(
        request,
        "public/batches.html",
        {"page": _page(request, selectors.list_batches())},
    )


@require_GET
def batches_csv(request):
    def rows():
        for batch in selectors.list_batches().iterator(chunk_size=2000):
            yield [
                batch.serial_label,
                batch.project.code,
                batch.project.name_zh,
                batch.project.name_en,
                batch.vintage,
                batch.monitoring_start.isoformat(),
                batch.monitoring_end.isoformat(),
                batch.quantity,
                batch.buffer_quantity,
                batch.first_serial,
                batch.last_serial,
                timezone.localtime(batch.issued_at).date().isoformat(),
            ]

    return _csv_response(
        "credit-batches.csv",
        [
            "serial_label",
            "project",
            "project_name_zh",
            "project_name_en",
            "vintage",
            "monitoring_start",
            "monitoring_end",
            "quantity_t_co2e",
            "buffer_t_co2e",
            "first_serial",
            "last_serial",
            "issued_on",
        ],
        rows(),
    )


@require_GET
def buffer_pool(request):
    rows = selectors.list_buffer_pool()
    totals = {
        key: sum(row[key] for row in rows)
        for key in ("withheld", "balance", "reserved", "used")
    }
    return render(request, "public/buffer.html", {"rows": rows, "totals": totals})


@require_GET
def buffer_pool_csv(request):
    return _csv_response(
        "buffer-pool.csv",
        [
            "project",
            "project_name_zh",
            "project_name_en",
            "withheld_t_co2e",
            "balance_t_co2e",
            "reserved_t_co2e",
            "used_t_co2e",
        ],
        (
            [
                row["code"],
                row["name_zh"],
                row["name_en"],
                row["withheld"],
                row["balance"],
                row["reserved"],
                row["used"],
            ]
            for row in selectors.list_buffer_pool()
        ),
    )


# Statistics --------------------------------------------------------------------------


def _statistics() -> dict:
    years = selectors.credits_by_year()
    ecosystems = [
        {**row, "label": ECOSYSTEM_LABELS.get(row["ecosystem"], row["ecosystem"])}
        for row in selectors.sink_by_ecosystem()
    ]
    months = [
        {**row, "label": row["month"].strftime("%Y-%m")}
        for row in selectors.transfers_by_month()
    ]
    vintages = selectors.transfers_by_vintage()
    ecosystem_sales = [
        {**row, "label": ECOSYSTEM_LABELS.get(row["ecosystem"], row["ecosystem"])}
        for row in selectors.transfers_by_ecosystem()
    ]
    return {
        "years": years,
        "ecosystems": ecosystems,
        "months": months,
        "vintages": vintages,
        "ecosystem_sales": ecosystem_sales,
    }


@require_GET
def statistics(request):
    data = _statistics()
    charts = {
        "years": {
            "labels": [str(row["year"]) for row in data["years"]],
            "issued": [row["issued"] for row in data["years"]],
            "retired": [row["retired"] for row in data["years"]],
        },
        "ecosystems": {
            "labels": [row["label"] for row in data["ecosystems"]],
            "sink": [str(rounded(row["sink"], WHOLE)) for row in data["ecosystems"]],
        },
        "months": {
            "labels": [row["label"] for row in data["months"]],
            "tonnes": [row["tonnes"] for row in data["months"]],
            "price": [str(row["average_price"]) for row in data["months"]],
        },
        "vintages": {
            "labels": [str(row["vintage"]) for row in data["vintages"]],
            "tonnes": [row["tonnes"] for row in data["vintages"]],
            "price": [str(row["average_price"]) for row in data["vintages"]],
        },
        "ecosystem_sales": {
            "labels": [row["label"] for row in data["ecosystem_sales"]],
            "tonnes": [row["tonnes"] for row in data["ecosystem_sales"]],
            "price": [str(row["average_price"]) for row in data["ecosystem_sales"]],
        },
        "text": {
            "issued": _("Issued (t CO2e)"),
            "retired": _("Retired (t CO2e)"),
            "sink": _("Annual sink (t CO2e per year)"),
            "tonnes": _("Volume (t CO2e)"),
            "price": _("Average price (CNY per t CO2e)"),
        },
    }
    return render(request, "public/statistics.html", {**data, "charts": charts})


# The CSV tables: their name in the address -> their key in _statistics().
STATISTICS_SERIES = {
    "years": "years",
    "ecosystems": "ecosystems",
    "months": "months",
    "vintages": "vintages",
    "ecosystem-sales": "ecosystem_sales",
}


@require_GET
def statistics_csv(request, series):
    if series not in STATISTICS_SERIES:
        return render(
            request,
            "public/missing.html",
            {"message": _("There is no such table of statistics.")},
            status=404,
        )
    data = _statistics()[STATISTICS_SERIES[series]]
    tables = {
        "years": lambda: (
            ["year", "issued_t_co2e", "retired_t_co2e"],
            [[row["year"], row["issued"], row["retired"]] for row in data],
        ),
        "ecosystems": lambda: (
            ["ecosystem", "area_ha", "sink_t_co2e_per_year", "share"],
            [
                [row["ecosystem"], row["area_ha"], row["sink"], row["share"]]
                for row in data
            ],
        ),
        "months": lambda: (
            ["month", "volume_t_co2e", "average_price_cny_per_t"],
            [[row["label"], row["tonnes"], row["average_price"]] for row in data],
        ),
        "vintages": lambda: (
            ["vintage", "volume_t_co2e", "average_price_cny_per_t"],
            [[row["vintage"], row["tonnes"], row["average_price"]] for row in data],
        ),
        "ecosystem-sales": lambda: (
            ["ecosystem", "volume_t_co2e", "average_price_cny_per_t"],
            [[row["ecosystem"], row["tonnes"], row["average_price"]] for row in data],
        ),
    }
    header, rows = tables[series]()
    return _csv_response(f"statistics-{series}.csv", header, rows)


# Certificates ------------------------------------------------------------------------


def _missing_certificate(request):
    return render(
        request,
        "public/missing.html",
        {
            "message": _(
                "No certificate with this verification code exists. Check the "
                "address, or scan the code on the certificate again."
            ),
            "certificate_missing": True,
        },
        status=404,
    )


def _ranges(entries: list[LedgerEntry]) -> list[dict]:
    return [
        {
            "entry": entry,
            "label": serial_label(
                entry.batch.project.code,
                entry.batch.vintage,
                entry.first_serial,
                entry.last_serial,
            ),
            "project": entry.batch.project,
            "vintage": entry.batch.vintage,
            "quantity": entry.quantity,
        }
        for entry in entries
    ]


def _verify_url(request, certificate: Certificate) -> str:
    return request.build_absolute_uri(
        reverse("public:certificate-verify", args=[certificate.token])
    )


def _certificate_context(request, certificate: Certificate) -> dict:
    entries = retire_entries(certificate)
    return {
        "certificate": certificate,
        "beneficiary": _beneficiary(certificate),
        "holder": selectors.holder_name(certificate.account),
        "ranges": _ranges(entries),
        "ecosystems": _ecosystem_text(selectors.certificate_ecosystems(entries)),
        "verify_url": _verify_url(request, certificate),
    }


@require_GET
@cache_control(public=True, max_age=300)
def certificate_page(request, token):
    certificate = selectors.get_certificate(token=token)
    if certificate is None:
        return _missing_certificate(request)
    context = _certificate_context(request, certificate)
    context["qr_svg"] = pdf.qr_svg(context["verify_url"])
    return render(request, "public/certificate.html", context)


@require_GET
@cache_control(public=True, max_age=PDF_CACHE_SECONDS)
def certificate_pdf(request, token):
    """Made on request and kept in the cache (a certificate never changes), so
    there is no stored file to keep in step with the database."""
    certificate = selectors.get_certificate(token=token)
    if certificate is None:
        return _missing_certificate(request)
    key = f"certificate-pdf:{token}:{get_language()}:{request.get_host()}"
    content = cache.get(key)
    if content is None:
        context = _certificate_context(request, certificate)
        account = certificate.account.number
        if context["holder"]:
            account = f"{account} · {context['holder']}"
        sheet = pdf.CertificateSheet(
            number=certificate.number,
            beneficiary=context["beneficiary"],
            purpose=certificate.get_purpose_display(),
            reporting_year=str(certificate.reporting_year or "—"),
            quantity=certificate.quantity,
            retired_at=timezone.localtime(certificate.retired_at).strftime(
                "%Y-%m-%d %H:%M"
            ),
            account=account,
            ranges=[
                {
                    "label": item["label"],
                    "project": f"{item['project'].code} {item['project'].display_name}",
                    "vintage": item["vintage"],
                    "quantity": item["quantity"],
                }
                for item in context["ranges"]
            ],
            ecosystems=context["ecosystems"],
            entries=[
                {
                    "sequence": item["entry"].sequence,
                    "entry_hash": item["entry"].entry_hash,
                }
                for item in context["ranges"]
            ],
            verify_url=context["verify_url"],
        )
        try:
            content = pdf.render(sheet)
        except pdf.FontMissing:
            return render(
                request,
                "public/missing.html",
                {
                    "message": _(
                        "The certificate PDF cannot be made on this server "
                        "(its Chinese font is not installed). The certificate "
                        "page shows the same facts."
                    )
                },
                status=503,
            )
        cache.set(key, content, PDF_CACHE_SECONDS)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="certificate-{certificate.number}.pdf"'
    )
    return response


@require_GET
@never_cache
def certificate_verify(request, token):
    """Recomputes the certificate's journal entries' hashes on every request."""
    certificate = selectors.get_certificate(token=token, with_holder=False)
    if certificate is None:
        return _missing_certificate(request)
    check = check_certificate(certificate)
    return render(
        request,
        "public/verify.html",
        {
            "certificate": certificate,
            "beneficiary": _beneficiary(certificate),
            "check": check,
        },
    )
