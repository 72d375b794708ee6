"""Estimate the carbon sink of a boundary from a land-cover file, without saving
anything: the analyst's command line.

    python manage.py estimate --boundary bijie.geojson \\
        --landcover mcd12c1_2019.tif --scheme modis-igbp --price 95.70

With ``--period-start`` and ``--period-end`` (instead of ``--years``) the
fingerprint is the one a run of the same boundary, land cover, scheme,
methodology, period and price gets: both come through
``estimation.fingerprints``.

With ``--each-feature [NAME_FIELD]`` every feature of the boundary file (a
project's parcels, every project of a county) is estimated on its own, all in
one pass over the raster, and reported one after another, named by the field
(numbered from 1 without one); overlapping features each count in full.
"""

import json
from contextlib import contextmanager
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
from estimation.services.measurement import (
    measure_classes,
    measure_raster_classes_of_each,
)
from estimation.services.runs import flux_estimate
from registry.boundaries import read_boundary_features, read_boundary_file

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
            "--each-feature",
            nargs="?",
            const="",
            metavar="NAME_FIELD",
            help="estimate every feature of the boundary file on its own, in one "
            "pass over a GeoTIFF: one result per feature, named by NAME_FIELD "
            "(numbered from 1 without it)",
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
        kind = (
            LandCoverDataset.Kind.RASTER
            if landcover_path.suffix.lower() in (".tif", ".tiff")
            else LandCoverDataset.Kind.VECTOR
        )
        inputs = {
            "landcover": landcover_path,
            "kind": kind,
            "class_field": options["class_field"],
            "scheme": scheme,
            "methodology": methodology,
            "period": period,
            "years": years,
            "price": price,
        }
        if options["each_feature"] is None:
            report = self._estimate_one(boundary_path, options, inputs)
            getattr(self, f"_write_{options['format']}")(report)
            return
        if kind != LandCoverDataset.Kind.RASTER:
            raise CommandError("--each-feature needs a GeoTIFF land cover.")
        reports = self._estimate_each(boundary_path, options, inputs)
        getattr(self, f"_write_each_{options['format']}")(reports)

    def _estimate_one(self, boundary_path: Path, options, inputs) -> dict:
        try:
            with boundary_path.open("rb") as handle:
                boundary = read_boundary_file(
                    File(handle, name=boundary_path.name),
                    declared_srid=options["boundary_crs"],
                )
        except ValidationError as error:
            raise CommandError("Boundary: " + " ".join(error.messages)) from None
        with self._refusals():
            measured = measure_classes(
                path=inputs["landcover"],
                kind=inputs["kind"],
                boundary=boundary.geometry,
                nodata_codes=inputs["scheme"].nodata_codes,
                class_field=inputs["class_field"],
            )
            report = self._estimated(measured, inputs)
        report["fingerprint"] = self._fingerprint(
            boundary.geometry, self._landcover_sha256(inputs["landcover"]), inputs
        )
        return report

    def _estimate_each(self, boundary_path: Path, options, inputs) -> list[dict]:
        """One report per feature, all measured in one pass over the raster."""
        try:
            with boundary_path.open("rb") as handle:
                features = read_boundary_features(
                    File(handle, name=boundary_path.name),
                    name_field=options["each_feature"],
                    declared_srid=options["boundary_crs"],
                )
        except ValidationError as error:
            raise CommandError("Boundary: " + " ".join(error.messages)) from None
        try:
            measured = measure_raster_classes_of_each(
                path=inputs["landcover"],
                boundaries=[feature.boundary.geometry for feature in features],
                nodata_codes=inputs["scheme"].nodata_codes,
            )
        except area.AreaError as error:
            if error.boundary_index is None:
                raise CommandError(area_error_message(error)) from None
            name = features[error.boundary_index].name
            raise CommandError(f"Feature {name}: {area_error_message(error)}") from None
        sha256 = self._landcover_sha256(inputs["landcover"])
        reports = []
        for feature, classes in zip(features, measured, strict=True):
            with self._refusals():
                report = {"feature": feature.name} | self._estimated(classes, inputs)
            report["fingerprint"] = self._fingerprint(
                feature.boundary.geometry, sha256, inputs
            )
            reports.append(report)
        return reports

    @contextmanager
    def _refusals(self):
        """The measuring and calculating errors, as the command line's."""
        try:
            yield
        except (area.AreaError, landuse.LandUseError) as error:
            raise CommandError(area_error_message(error)) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except calculations.CalculationError as error:
            raise CommandError(str(error)) from None

    def _estimated(self, measured, inputs) -> dict:
        by_code, parts = measured
        estimate = flux_estimate(
            by_code_ha=by_code,
            scheme=inputs["scheme"],
            methodology=inputs["methodology"],
            years=inputs["years"],
            price=inputs["price"],
        )
        return self._report(
            estimate, parts, inputs["methodology"], inputs["price"], inputs["years"]
        )

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

    def _landcover_sha256(self, landcover: Path) -> str:
        with landcover.open("rb") as handle:
            return fingerprints.file_sha256(handle)

    def _fingerprint(self, boundary, sha256: str, inputs) -> str:
        fingerprint_inputs = fingerprints.estimate_inputs(
            boundary_wkb=bytes(boundary.wkb),
            landcover=landcover_inputs(
                sha256=sha256,
                kind=inputs["kind"],
                class_field=inputs["class_field"].strip(),
                scheme=inputs["scheme"],
            ),
            baseline=None,
            methodology=methodology_inputs(inputs["methodology"]),
            period=inputs["period"],
            years=inputs["years"],
            price=inputs["price"],
        )
        return fingerprints.fingerprint(fingerprint_inputs)

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
        writer.writerows(self._csv_rows(report))

    def _csv_rows(self, report) -> list[list]:
        rows = [
            [rank, *(row[column] for column in COLUMNS)]
            for rank, row in enumerate(report["ecosystems"], 1)
        ]
        total = report["total"]
        rows.append(
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
        return rows

    def _write_each_json(self, reports):
        self.stdout.write(json.dumps(reports, ensure_ascii=False, indent=2))

    def _write_each_csv(self, reports):
        writer = csv_writer(self.stdout)
        writer.writerow(["feature", "rank", *COLUMNS])
        for report in reports:
            name = report["feature"]
            writer.writerows([name, *row] for row in self._csv_rows(report))

    def _write_each_table(self, reports):
        for report in reports:
            self.stdout.write(f"feature {report['feature']}")
            self._write_table(report)

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
