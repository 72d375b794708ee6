import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from estimation.models import ClassScheme, EstimationRun, LandCoverDataset, Methodology
from registry.roles import Role

pytestmark = pytest.mark.django_db


def _modis_scheme_pk() -> int:
    return ClassScheme.objects.get(slug="modis-igbp").pk


def _default_methodology_pk() -> int:
    return Methodology.objects.get(is_default=True).pk


BIJIE = "data/bijie/divisions.geojson"
MODIS = "data/modis/mcd12c1_2019_igbp_guizhou.tif"


def test_staff_upload_land_cover_and_run_an_estimate_through_the_pages(
    client,
    staff,
    owner,
    project,
    landcover_file,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(staff)
    response = client.post(
        reverse("estimation:dataset-upload"),
        {
            "name_zh": "大方土地覆盖",
            "name_en": "Dafang land cover",
            "organization": owner.pk,
            "product": "modis-igbp",
            "year": 2019,
            "scheme": _modis_scheme_pk(),
            "file": SimpleUploadedFile("lc.tif", landcover_file.read_bytes()),
        },
    )
    assert response.status_code == 302
    dataset = LandCoverDataset.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("estimation:run-create"),
            {
                "project": project.pk,
                "dataset": dataset.pk,
                "methodology": _default_methodology_pk(),
                "period_start": "2021-01-01",
                "period_end": "2021-12-31",
                "price_cny_per_t_co2e": "95.70",
            },
        )
    run = EstimationRun.objects.get()
    assert response.url == reverse("estimation:run-detail", args=[run.pk])
    body = client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sink by ecosystem" in body
    assert "Forest" in body and "Farmland" in body
    assert 'class="bar-chart"' in body
    status = client.get(reverse("estimation:run-status", args=[run.pk])).json()
    assert (status["status"], status["progress"]) == ("succeeded", 100)
    png = client.get(reverse("estimation:run-landcover", args=[run.pk]))
    assert png["Content-Type"] == "image/png"
    assert b"".join(png.streaming_content).startswith(b"\x89PNG")
    rows = client.get(reverse("estimation:run-csv", args=[run.pk])).content.decode()
    assert rows.startswith("\ufeffrank,ecosystem,area_ha")
    assert "forest" in rows and run.fingerprint in rows


def test_a_bad_land_cover_upload_shows_a_translated_error(client, staff, owner):
    client.force_login(staff)
    response = client.post(
        reverse("estimation:dataset-upload"),
        {
            "name_zh": "坏",
            "name_en": "Bad",
            "organization": owner.pk,
            "product": "clcd",
            "year": 2020,
            "scheme": _modis_scheme_pk(),
            "file": SimpleUploadedFile("x.tif", b"not a tiff at all"),
        },
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 400
    assert "GeoTIFF" in response.content.decode()
    assert not LandCoverDataset.objects.exists()


def test_runs_of_other_organizations_are_404(client, make_user, run_for):
    run = run_for()
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    for name in ("run-detail", "run-status", "run-csv", "run-landcover"):
        assert (
            client.get(reverse(f"estimation:{name}", args=[run.pk])).status_code == 404
        )
    # A verifier sees only runs submitted for verification
    # (tests/estimation/test_verifier_visibility.py).
    client.force_login(make_user(role=Role.VERIFIER))
    assert (
        client.get(reverse("estimation:run-detail", args=[run.pk])).status_code == 404
    )


def test_buyers_cannot_open_the_estimation_forms(client, make_user):
    client.force_login(make_user(role=Role.BUYER))
    assert client.get(reverse("estimation:run-create")).status_code == 403
    assert client.get(reverse("estimation:dataset-upload")).status_code == 403


def test_methodologies_are_public_with_their_citations(client):
    body = client.get(reverse("estimation:methodology-list"), HTTP_ACCEPT_LANGUAGE="en")
    text = body.content.decode()
    assert "Fang J. et al. 2007" in text
    assert "0.581" in text


def test_estimate_command_on_bijie_and_modis_as_json(capsys):
    call_command(
        "estimate",
        "--boundary",
        BIJIE,
        "--landcover",
        MODIS,
        "--scheme",
        "modis-igbp",
        "--price",
        "95.70",
        "--format",
        "json",
    )
    report = json.loads(capsys.readouterr().out)
    # Bijie City on the WGS84 ellipsoid: 26,865.8 km² (data/README).
    assert report["boundary_area_ha"] == pytest.approx(2_686_580, rel=5e-4)
    assert report["covered_area_ha"] + 0 == pytest.approx(
        report["boundary_area_ha"], rel=1e-6
    )
    assert report["ecosystems"][0]["ecosystem"] == "forest"
    keys = {
        "ecosystem",
        "area_ha",
        "coefficient",
        "coefficient_unit",
        "sink_t_c_per_year",
        "sink_t_co2e_per_year",
        "value_cny_per_year",
    }
    assert all(set(row) == keys for row in report["ecosystems"])
    total = sum(D(str(row["sink_t_co2e_per_year"])) for row in report["ecosystems"])
    assert D(str(report["total"]["sink_t_co2e_per_year"])) == pytest.approx(
        total, abs=D("0.01")
    )
    assert report["methodology"] == "bijie-coefficient@1"
    assert len(report["fingerprint"]) == 64


def test_estimate_command_writes_csv_and_table(capsys):
    call_command(
        "estimate",
        "--boundary",
        BIJIE,
        "--landcover",
        MODIS,
        "--scheme",
        "modis-igbp",
        "--format",
        "csv",
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("rank,ecosystem,area_ha")
    assert lines[1].startswith("1,forest,")
    call_command(
        "estimate", "--boundary", BIJIE, "--landcover", MODIS, "--scheme", "modis-igbp"
    )
    assert "total" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scheme", "nope"], "Unknown class scheme"),
        (["--price", "-5"], "negative"),
        (["--price", "abc"], "Enter the price as a number"),
        (["--price", "95.705"], "at most 2 decimal places"),
        (["--methodology", "missing"], "Unknown methodology"),
    ],
)
def test_estimate_command_refuses_bad_input(arguments, message):
    base = {"--boundary": BIJIE, "--landcover": MODIS, "--scheme": "modis-igbp"}
    for flag, value in zip(arguments[::2], arguments[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError, match=message):
        call_command("estimate", *[item for pair in base.items() for item in pair])


def test_estimate_command_refuses_a_boundary_outside_the_raster(tmp_path):
    boundary = tmp_path / "far.geojson"
    boundary.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [[120, 40], [120.1, 40], [120.1, 40.1], [120, 40.1], [120, 40]]
                ],
            }
        )
    )
    with pytest.raises(CommandError, match="outside the land-cover map"):
        call_command(
            "estimate",
            "--boundary",
            str(boundary),
            "--landcover",
            MODIS,
            "--scheme",
            "modis-igbp",
        )


def _write_features(path, named_geometries, name_field="no"):
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {name_field: name},
                        "geometry": geometry,
                    }
                    for name, geometry in named_geometries
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return path


def test_estimate_command_each_county_in_one_pass_as_json(capsys, tmp_path):
    call_command(
        "estimate", "--boundary", BIJIE, "--landcover", MODIS,
        "--scheme", "modis-igbp", "--price", "95.70",
        "--each-feature", "name_en", "--format", "json",
    )  # fmt: skip
    reports = json.loads(capsys.readouterr().out)
    divisions = json.loads(Path(BIJIE).read_text(encoding="utf-8"))["features"]
    dafang = next(f for f in divisions if f["properties"]["name_en"] == "Dafang County")
    single = _write_features(
        tmp_path / "dafang.geojson", [("Dafang County", dafang["geometry"])]
    )
    call_command(
        "estimate", "--boundary", str(single), "--landcover", MODIS,
        "--scheme", "modis-igbp", "--price", "95.70", "--format", "json",
    )  # fmt: skip
    alone = json.loads(capsys.readouterr().out)

    names = [report["feature"] for report in reports]
    assert names == [f["properties"]["name_en"] for f in divisions]
    # the city and its counties overlap; each is measured in full
    city, counties = reports[0], reports[1:]
    county_ha = sum(report["boundary_area_ha"] for report in counties)
    assert county_ha == pytest.approx(city["boundary_area_ha"], rel=1e-3)
    for report in reports:
        assert report["covered_area_ha"] == pytest.approx(
            report["boundary_area_ha"], rel=1e-6
        )
    # the same report, fingerprint included, as estimating the county alone
    assert reports[names.index("Dafang County")] == {"feature": "Dafang County"} | alone


def test_estimate_command_each_feature_as_csv_and_table(capsys, tmp_path):
    square = {
        "type": "Polygon",
        "coordinates": [
            [[105.3, 27.3], [105.4, 27.3], [105.4, 27.4], [105.3, 27.4], [105.3, 27.3]]
        ],
    }
    boundary = _write_features(
        tmp_path / "parcels.geojson", [("=1+1", square), ("B-2", square)]
    )
    base = ["--boundary", str(boundary), "--landcover", MODIS, "--scheme", "modis-igbp"]

    call_command("estimate", *base, "--each-feature", "no", "--format", "csv")
    lines = capsys.readouterr().out.splitlines()
    call_command("estimate", *base, "--each-feature")
    table = capsys.readouterr().out

    assert lines[0].startswith("feature,rank,ecosystem,area_ha")
    first = [line for line in lines[1:] if line.startswith("'=1+1,")]
    second = [line for line in lines[1:] if line.startswith("B-2,")]
    assert first and len(first) == len(second)  # the name cannot run as a formula
    # two features on the same ground: each counts in full
    assert [line.partition(",")[2] for line in first] == [
        line.partition(",")[2] for line in second
    ]
    assert first[-1].startswith("'=1+1,,total,")
    assert "feature 1" in table and "feature 2" in table
    assert table.count("total") == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--each-feature", "parcel_no"], "no field “parcel_no”"),
        (["--each-feature", "no"], "Feature far: .*outside the land-cover map"),
        (
            ["--each-feature", "no", "--landcover", "survey.gpkg"],
            "--each-feature needs a GeoTIFF",
        ),
    ],
)
def test_estimate_command_each_feature_refusals(tmp_path, arguments, message):
    near = {
        "type": "Polygon",
        "coordinates": [
            [[105.3, 27.3], [105.4, 27.3], [105.4, 27.4], [105.3, 27.4], [105.3, 27.3]]
        ],
    }
    far = {
        "type": "Polygon",
        "coordinates": [
            [[120, 40], [120.1, 40], [120.1, 40.1], [120, 40.1], [120, 40]]
        ],
    }
    boundary = _write_features(tmp_path / "p.geojson", [("near", near), ("far", far)])
    (tmp_path / "survey.gpkg").write_bytes(b"not read")
    options = {"--boundary": str(boundary), "--landcover": MODIS}
    options |= {"--scheme": "modis-igbp"}
    flags = iter(arguments)
    for flag in flags:
        value = next(flags)
        options[flag] = str(tmp_path / value) if flag == "--landcover" else value
    with pytest.raises(CommandError, match=message):
        call_command("estimate", *[item for pair in options.items() for item in pair])
