"""Estimate the carbon sink of a boundary from a land-cover file, without saving
anything: the analyst's command line.

    python manage.py estimate --boundary bijie.geojson \\
        --landcover mcd12c1_2019.tif --scheme modis-igbp --price 95.70

With ``--period-start`` and ``--period-end`` (instead of ``--years``) the
fingerprint is the one a run of the same boundary, land cover, scheme,
methodology, period and price gets: both come through
``estimation.fingerprints``.
"""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from common import quantities
from common.errors import quantity_message
from common.spreadsheets import csv_writer
from estimation import area, calculations, fingerprints, landuse
from estimation.errors import area_error_message
from estimation.models import ClassScheme, LandCoverDataset, Methodology
from estimation.selectors import (
    get_default_methodology,
    landcover_inputs,
    methodology_inputs,
)
from estimation.services.runs import flux_estimate, measure_classes
from registry.boundaries import read_boundary_file

COLUMNS = (
    "ecosystem",
    "area_ha",
    "coefficient",
    "coefficient_unit",
    "sink_t_c_per_year",
    "sink_t_co2e_per_year",
    "value_cny_per_year",
)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {text!r}") from None


def _number(value):
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


class Command(BaseCommand):
    help = "Estimate a boundary's carbon sink from a land-cover file (saves nothing)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--boundary",
            required=True,
            help="GeoJSON, GeoPackage, zipped Shapefile or KML",
        )
        parser.add_argument(
            "--landcover",
            required=True,
            help="GeoTIFF of class codes, or land-use polygons (.gpkg, .zip)",
        )
        parser.add_argument(
            "--scheme",
            required=True,
            help="class scheme slug, e.g. modis-igbp, clcd, tnls",
        )
        parser.add_argument(
            "--methodology",
            help="slug, or slug@version (default: the default methodology)",
        )
        parser.add_argument("--price", help="carbon price in CNY per t CO2e")
        parser.add_argument("--years", help="length of the period in years (default 1)")
        parser.add_argument(
            "--period-start",
            type=_iso_date,
            help="first day of the period (YYYY-MM-DD), with --period-end",
        )
        parser.add_argument(
            "--period-end",
            type=_iso_date,
            help="last day of the period (YYYY-MM-DD), with --period-start",
        )
        parser.add_argument(
            "--class-field", default="", help="class-code field of land-use polygons"
        )
        parser.add_argument(
            "--boundary-crs",
            type=int,
            help="EPSG code when the boundary file names none",
        )
        parser.add_argument(
            "--format", choices=("table", "json", "csv"), default="table"
        )

    def handle(self, *args, **options):
        scheme = ClassScheme.objects.filter(slug=options["scheme"]).first()
        if scheme is None:
            known = ", ".join(ClassScheme.objects.values_list("slug", flat=True))
            raise CommandError(
                f"Unknown class scheme {options['scheme']!r}; known: {known}."
            )
        methodology = self._methodology(options["methodology"])
        try:
            price = (
                quantities.parse_price(options["price"], "CNY")
                if options["price"] is not None
                else None
            )
            period, years = self._period(options)
        except quantities.QuantityError as error:
            raise CommandError(quantity_message(error)) from None
        except calculations.CalculationError as error:
            raise CommandError(str(error)) from None

        boundary_path = Path(options["boundary"])
        landcover_path = Path(options["landcover"])
        for path in (boundary_path, landcover_path):
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
        try:
            with boundary_path.open("rb") as handle:
                boundary = read_boundary_file(
                    File(handle, name=boundary_path.name),
                    declared_srid=options["boundary_crs"],
                )
        except ValidationError as error:
            raise CommandError("Boundary: " + " ".join(error.messages)) from None

        kind = (
            LandCoverDataset.Kind.RASTER
            if landcover_path.suffix.lower() in (".tif", ".tiff")
            else LandCoverDataset.Kind.VECTOR
        )
        try:
            by_code, parts = measure_classes(
                path=landcover_path,
                kind=kind,
                boundary=boundary.geometry,
                nodata_codes=scheme.nodata_codes,
                class_field=options["class_field"],
            )
            estimate = flux_estimate(
                by_code_ha=by_code,
                scheme=scheme,
                methodology=methodology,
                years=years,
                price=price,
            )
        except (area.AreaError, landuse.LandUseError) as error:
            raise CommandError(area_error_message(error)) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except calculations.CalculationError as error:
            raise CommandError(str(error)) from None

        report = self._report(estimate, parts, methodology, price, years)
        report["fingerprint"] = self._fingerprint(
            boundary=boundary.geometry,
            landcover=landcover_path,
            kind=kind,
            class_field=options["class_field"],
            scheme=scheme,
            methodology=methodology,
            period=period,
            years=years,
            price=price,
        )
        getattr(self, f"_write_{options['format']}")(report)

    def _methodology(self, name: str | None) -> Methodology:
        if not name:
            methodology = get_default_methodology()
        else:
            slug, _, version = name.partition("@")
            candidates = Methodology.objects.filter(slug=slug)
            if version:
                candidates = candidates.filter(version=version)
            methodology = candidates.order_by("-version").first()
        if methodology is None:
            raise CommandError(f"Unknown methodology {name!r}.")
        if methodology.kind != Methodology.Kind.FLUX:
            raise CommandError(
                "The command line runs coefficient (flux) methodologies."
            )
        return methodology

    def _period(self, options) -> tuple[tuple[date, date] | None, Decimal]:
        """The period's dates (if given) and its length in years."""
        start, end = options["period_start"], options["period_end"]
        if (start is None) != (end is None):
            raise CommandError("Give both --period-start and --period-end.")
        if start is None:
            years = calculations.decimal_from(options["years"] or "1", name="years")
            return None, years
        if options["years"] is not None:
            raise CommandError("Give either --years or the period's dates, not both.")
        return (start, end), calculations.period_years(start, end)

    def _fingerprint(
        self,
        *,
        boundary,
        landcover: Path,
        kind,
        class_field,
        scheme,
        methodology,
        period,
        years,
        price,
    ) -> str:
        with landcover.open("rb") as handle:
            sha256 = fingerprints.file_sha256(handle)
        inputs = fingerprints.estimate_inputs(
            boundary_wkb=bytes(boundary.wkb),
            landcover=landcover_inputs(
                sha256=sha256,
                kind=kind,
                class_field=class_field.strip(),
                scheme=scheme,
            ),
            baseline=None,
            methodology=methodology_inputs(methodology),
            period=period,
            years=years,
            price=price,
        )
        return fingerprints.fingerprint(inputs)

    def _report(self, estimate, parts, methodology, price, years):
        ecosystems = [
            {
                "ecosystem": row.ecosystem,
                "area_ha": _number(row.area_ha),
                "coefficient": _number(row.coefficient),
                "coefficient_unit": row.coefficient_unit,
                "sink_t_c_per_year": _number(row.sink_t_c_per_year),
                "sink_t_co2e_per_year": _number(row.sink_t_co2e_per_year),
                "value_cny_per_year": _number(row.value_cny_per_year),
            }
            for row in estimate.ecosystems
        ]
        totals = estimate.totals
        unmapped = sum(estimate.unmapped_codes_ha.values(), Decimal(0))
        return {
            "boundary_area_ha": _number(
                quantities.rounded(parts["boundary"], quantities.AREA_PLACES)
            ),
            "covered_area_ha": _number(totals.area_ha + unmapped),
            "nodata_area_ha": _number(
                quantities.rounded(parts["nodata"], quantities.AREA_PLACES)
            ),
            "outside_area_ha": _number(
                quantities.rounded(parts["outside"], quantities.AREA_PLACES)
            ),
            "unknown_codes_ha": {
                code: _number(ha) for code, ha in estimate.unmapped_codes_ha.items()
            },
            "ecosystems": ecosystems,
            "total": {
                "area_ha": _number(totals.area_ha),
                "sink_t_c_per_year": _number(totals.sink_t_c_per_year),
                "sink_t_co2e_per_year": _number(totals.sink_t_co2e_per_year),
                "value_cny_per_year": _number(totals.value_cny_per_year),
            },
            "methodology": f"{methodology.slug}@{methodology.version}",
            "price_cny_per_t_co2e": _number(price),
            "years": _number(years),
        }

    def _write_json(self, report):
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))

    def _write_csv(self, report):
        writer = csv_writer(self.stdout)
        writer.writerow(["rank", *COLUMNS])
        for rank, row in enumerate(report["ecosystems"], 1):
            writer.writerow([rank, *(row[column] for column in COLUMNS)])
        total = report["total"]
        writer.writerow(
            [
                "",
                "total",
                total["area_ha"],
                "",
                "",
                total["sink_t_c_per_year"],
                total["sink_t_co2e_per_year"],
                total["value_cny_per_year"],
            ]
        )

    def _write_table(self, report):
        line = "{:<5}{:<11}{:>14}{:>11}{:>8}{:>14}{:>16}{:>18}"
        out = self.stdout
        out.write(
            line.format(
                "rank",
                "ecosystem",
                "area_ha",
                "coef",
                "unit",
                "t_C/yr",
                "t_CO2e/yr",
                "CNY/yr",
            )
        )
        for rank, row in enumerate(report["ecosystems"], 1):
            out.write(
                line.format(
                    rank,
                    row["ecosystem"],
                    f"{row['area_ha']:,.2f}",
                    "-" if row["coefficient"] is None else f"{row['coefficient']:g}",
                    row["coefficient_unit"] or "-",
                    f"{row['sink_t_c_per_year']:,.1f}",
                    f"{row['sink_t_co2e_per_year']:,.1f}",
                    "-"
                    if row["value_cny_per_year"] is None
                    else f"{row['value_cny_per_year']:,.0f}",
                )
            )
        total = report["total"]
        out.write(
            line.format(
                "",
                "total",
                f"{total['area_ha']:,.2f}",
                "",
                "",
                f"{total['sink_t_c_per_year']:,.1f}",
                f"{total['sink_t_co2e_per_year']:,.1f}",
                "-"
                if total["value_cny_per_year"] is None
                else f"{total['value_cny_per_year']:,.0f}",
            )
        )
        out.write(
            f"boundary {report['boundary_area_ha']:,.2f} ha; "
            f"no data {report['nodata_area_ha']:,.2f} ha; "
            f"outside the map {report['outside_area_ha']:,.2f} ha; "
            f"methodology {report['methodology']}; "
            f"fingerprint {report['fingerprint'][:16]}"
        )
        if report["unknown_codes_ha"]:
            out.write(f"unknown class codes (ha): {report['unknown_codes_ha']}")
