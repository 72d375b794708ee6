"""Input fingerprints: one pure computation for runs and the command line; the
land-cover file is hashed at upload and read again only at issuance."""

import ast
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.urls import reverse

from estimation import fingerprints
from estimation.selectors import current_fingerprint
from estimation.services import datasets
from estimation.services.verification import submit_for_verification

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}

LANDCOVER = fingerprints.LandCoverInputs(
    sha256="a" * 64,
    kind="raster",
    class_field="",
    scheme="modis-igbp",
    mapping={"2": "forest", "12": "farmland", "10": "grassland"},
    nodata_codes=["255", "0"],
)
METHODOLOGY = fingerprints.MethodologyInputs(
    slug="bijie-coefficient",
    version=1,
    kind="flux",
    coefficients=[
        fingerprints.CoefficientInputs(
            "forest", "", Decimal("0.581"), "t_c", "flux", "sink"
        )
    ],
)


def inputs(**overrides):
    arguments = {
        "boundary_wkb": b"boundary",
        "landcover": LANDCOVER,
        "baseline": None,
        "methodology": METHODOLOGY,
        "period": (date(2021, 1, 1), date(2025, 12, 31)),
        "price": Decimal("95.70"),
    }
    arguments.update(overrides)
    return fingerprints.estimate_inputs(**arguments)


def test_the_fingerprint_module_is_pure():
    tree = ast.parse(Path(fingerprints.__file__).read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not imported & {"django", "estimation", "registry", "trading"}


def test_the_canonical_form_is_the_one_stored_runs_were_fingerprinted_with():
    # Runs already stored hold fingerprints of exactly this form: a change to
    # it would make every verified run look changed, and nothing be issued.
    assert fingerprints.fingerprint(inputs()) == (
        "95be3aa62f40be2bf80974b3ffbf2fd5bd414f4d463a65c45d8efdbb455a6656"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"boundary_wkb": b"boundary2"},
        {"landcover": LANDCOVER.__class__(**{**LANDCOVER.__dict__, "sha256": "b"})},
        {
            "landcover": LANDCOVER.__class__(
                **{**LANDCOVER.__dict__, "mapping": {"2": "farmland"}}
            )
        },
        {
            "landcover": LANDCOVER.__class__(
                **{**LANDCOVER.__dict__, "nodata_codes": ["255"]}
            )
        },
        {"baseline": LANDCOVER},
        {
            "methodology": METHODOLOGY.__class__(
                **{**METHODOLOGY.__dict__, "version": 2}
            )
        },
        {"period": (date(2021, 1, 1), date(2024, 12, 31))},
        {"price": None},
        {"engine": "next"},
    ],
)
def test_every_input_changes_the_fingerprint(change):
    assert fingerprints.fingerprint(inputs(**change)) != fingerprints.fingerprint(
        inputs()
    )


def test_a_price_is_the_same_input_whatever_its_trailing_zeros():
    assert fingerprints.fingerprint(
        inputs(price=Decimal("95.7"))
    ) == fingerprints.fingerprint(inputs(price=Decimal("95.70")))


def test_a_length_in_years_stands_in_for_a_period_and_matches_none():
    by_length = inputs(period=None, years=Decimal(5))
    assert by_length["period"] == {"years": "5"}
    assert fingerprints.fingerprint(by_length) != fingerprints.fingerprint(inputs())


@pytest.mark.django_db
def test_the_command_and_a_run_give_the_same_fingerprint(
    project, run_for, landcover_file, tmp_path, capsys
):
    run = run_for(price_cny_per_t_co2e=Decimal("95.7"))
    run.refresh_from_db()
    boundary = tmp_path / "boundary.geojson"
    boundary.write_text(project.boundary.json)
    methodology = run.methodology
    arguments = [
        "--boundary",
        str(boundary),
        "--landcover",
        str(landcover_file),
        "--scheme",
        run.dataset.scheme.slug,
        "--methodology",
        f"{methodology.slug}@{methodology.version}",
        "--price",
        "95.70",
        "--format",
        "json",
    ]
    call_command(
        "estimate",
        *arguments,
        "--period-start",
        "2021-01-01",
        "--period-end",
        "2025-12-31",
    )
    report = json.loads(capsys.readouterr().out)
    assert report["fingerprint"] == run.fingerprint
    assert report["total"]["sink_t_co2e_per_year"] == pytest.approx(
        float(run.total_t_co2e_per_year)
    )
    # Another period is another input.
    call_command(
        "estimate",
        *arguments,
        "--period-start",
        "2021-01-01",
        "--period-end",
        "2024-12-31",
    )
    assert json.loads(capsys.readouterr().out)["fingerprint"] != run.fingerprint


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--period-start", "2021-01-01"], "both --period-start and --period-end"),
        (
            [
                "--period-start",
                "2021-01-01",
                "--period-end",
                "2021-12-31",
                "--years",
                "1",
            ],
            "either --years or the period",
        ),
        (["--period-start", "2021-13-01", "--period-end", "2021-12-31"], "Not a date"),
        (["--period-start", "2022-01-01", "--period-end", "2021-12-31"], "period"),
    ],
)
def test_the_command_refuses_a_half_or_bad_period(extra, message, landcover_file):
    from django.core.management import CommandError

    from tests.estimation.test_views_and_command import BIJIE

    with pytest.raises(CommandError, match=message):
        call_command(
            "estimate",
            "--boundary",
            BIJIE,
            "--landcover",
            str(landcover_file),
            "--scheme",
            "modis-igbp",
            *extra,
        )


@pytest.mark.django_db
def test_a_run_with_a_price_without_trailing_zeros_still_matches_itself(run_for):
    # The database gives 95.70 back: the fingerprint must not tell them apart,
    # or the run could never be approved.
    run = run_for(price_cny_per_t_co2e=Decimal("95.7"))
    assert current_fingerprint(run) == run.fingerprint


@pytest.fixture
def no_file_reads(monkeypatch):
    """Any read of a stored file, or hashing of one, fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a page read a stored file")

    monkeypatch.setattr(FileSystemStorage, "_open", refuse)
    monkeypatch.setattr(fingerprints, "file_sha256", refuse)
    monkeypatch.setattr(datasets, "stored_file_sha256", refuse)


@pytest.mark.django_db
def test_the_verification_and_run_pages_read_no_file(
    client, staff, verified_run, no_file_reads
):
    verification = submit_for_verification(actor=staff, run=verified_run)
    client.force_login(staff)
    page = client.get(
        reverse("estimation:verification-detail", args=[verification.pk]), **EN
    )
    assert page.status_code == 200
    assert page.context["current_fingerprint"] == verified_run.fingerprint
    assert "unchanged" in page.content.decode()
    run_page = client.get(reverse("estimation:run-detail", args=[verified_run.pk]))
    assert run_page.status_code == 200
    assert verified_run.fingerprint[:16] in run_page.content.decode()


@pytest.mark.django_db
def test_the_current_fingerprint_uses_the_hash_recorded_at_upload(
    verified_run, no_file_reads
):
    dataset = verified_run.dataset
    assert current_fingerprint(verified_run) == verified_run.fingerprint
    type(dataset).objects.filter(pk=dataset.pk).update(sha256="0" * 64)
    assert current_fingerprint(verified_run) != verified_run.fingerprint


@pytest.mark.django_db
def test_the_upload_stores_the_files_sha256(dataset, landcover_file):
    import hashlib

    assert dataset.sha256 == hashlib.sha256(landcover_file.read_bytes()).hexdigest()
    assert datasets.stored_file_sha256(dataset) == dataset.sha256


@pytest.mark.django_db
def test_a_missing_file_hashes_as_missing(dataset):
    dataset.file.storage.delete(dataset.file.name)
    assert datasets.stored_file_sha256(dataset) == datasets.MISSING_FILE
