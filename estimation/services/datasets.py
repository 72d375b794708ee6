"""Land-cover datasets: upload (checked with the same checks an estimate will
make) and describe. The file's SHA-256 is computed once, as it is uploaded, and
stored on the dataset: fingerprints use the stored hash; only issuance reads
the file again (``stored_file_sha256``)."""

import hashlib
import logging
import tempfile
from pathlib import Path

import rasterio
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common import geodesy
from common.storage import is_disk_full, save_field_file, storage_full
from estimation import area, fingerprints, landuse
from estimation.errors import area_error_message
from estimation.models import ClassScheme, LandCoverDataset
from estimation.services.permissions import require_staff_of
from estimation.services.runs import BROKER_ERRORS
from registry.models import Organization, User

logger = logging.getLogger(__name__)

RASTER_EXTENSIONS = (".tif", ".tiff")
VECTOR_EXTENSIONS = (".gpkg", ".zip")
MISSING_FILE = "missing"


def _store_upload(
    uploaded, limit: int
) -> tuple[Path, str, tempfile.TemporaryDirectory]:
    """Copy an upload to a server-named temporary file, hashing it on the way."""
    if uploaded.size == 0:
        raise ValidationError(_("The file is empty."), code="empty_file")
    if uploaded.size > limit:
        raise ValidationError(
            _("The file is larger than the %(limit)d MB limit.")
            % {"limit": limit // (1024 * 1024)},
            code="file_too_large",
        )
    workdir = tempfile.TemporaryDirectory(prefix="landcover-")
    suffix = Path(uploaded.name or "").suffix.lower()
    path = Path(workdir.name) / f"upload{suffix}"
    digest = hashlib.sha256()
    written = 0
    try:
        with path.open("wb") as target:
            for chunk in uploaded.chunks():
                written += len(chunk)
                if written > limit:
                    raise ValidationError(
                        _("The file is larger than the %(limit)d MB limit.")
                        % {"limit": limit // (1024 * 1024)},
                        code="file_too_large",
                    )
                digest.update(chunk)
                target.write(chunk)
    except (ValidationError, OSError) as error:
        workdir.cleanup()
        if isinstance(error, OSError) and is_disk_full(error):
            raise storage_full(uploaded.name or "") from error
        raise
    return path, digest.hexdigest(), workdir


@transaction.atomic
def upload_landcover_dataset(
    *,
    actor: User,
    organization: Organization,
    name_zh: str,
    name_en: str,
    product: str,
    year: int,
    scheme: ClassScheme,
    uploaded,
    class_field: str = "",
    is_demo: bool = False,
) -> LandCoverDataset:
    """Check and store a land-cover GeoTIFF, or land-use polygons with a class
    field. The file is opened with the same checks the estimate will use."""
    require_staff_of(actor, organization)
    name = uploaded.name or ""
    suffix = Path(name).suffix.lower()
    if suffix not in RASTER_EXTENSIONS + VECTOR_EXTENSIONS:
        raise ValidationError(
            _(
                "Upload a GeoTIFF (.tif) of class codes, or land-use polygons as a "
                "GeoPackage or a zipped Shapefile."
            ),
            code="unsupported_format",
        )
    path, sha256, workdir = _store_upload(uploaded, settings.LANDCOVER_MAX_BYTES)
    try:
        if suffix in RASTER_EXTENSIONS:
            kind = LandCoverDataset.Kind.RASTER
            description = describe_raster(path)
        else:
            kind = LandCoverDataset.Kind.VECTOR
            if not class_field.strip():
                raise ValidationError(
                    {"class_field": _("Name the field that holds the class codes.")}
                )
            description = landuse.describe(path, class_field=class_field.strip())
        dataset = LandCoverDataset(
            name_zh=name_zh.strip(),
            name_en=name_en.strip(),
            product=product,
            year=year,
            scheme=scheme,
            kind=kind,
            original_name=name[-255:],
            size_bytes=uploaded.size,
            sha256=sha256,
            class_field=class_field.strip(),
            crs=description.pop("crs", ""),
            description=description,
            organization=organization,
            uploaded_by=actor,
            is_demo=is_demo,
        )
        dataset.full_clean(exclude=["file"])
        with path.open("rb") as handle:
            save_field_file(
                dataset.file, f"{sha256[:16]}{suffix}", File(handle), shown_name=name
            )
        dataset.save()
        transaction.on_commit(lambda: schedule_dataset_check(dataset.pk), robust=True)
        return dataset
    finally:
        workdir.cleanup()


def describe_raster(path: Path) -> dict:
    """A GeoTIFF's properties, after the checks every estimate will make."""
    with path.open("rb") as handle:
        if not geodesy.is_tiff(handle.read(4)):
            raise ValidationError(
                _("This is not a GeoTIFF file."), code="unsupported_format"
            )
    try:
        with area.LandCoverRaster(path):  # the checks every estimate will make
            pass
    except area.AreaError as error:
        raise ValidationError(area_error_message(error), code=error.code) from None
    with rasterio.open(path) as src:
        return {
            "crs": src.crs.to_string() if src.crs else "",
            "width": src.width,
            "height": src.height,
            "pixel_size": [abs(src.res[0]), abs(src.res[1])],
            "bounds": list(src.bounds),
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "tiled": src.profile.get("tiled", False),
        }


def stored_file_sha256(dataset: LandCoverDataset) -> str:
    """SHA-256 of the dataset's file as stored now (``MISSING_FILE`` if it is
    gone): reads the whole file, so only issuance calls it."""
    try:
        with dataset.file.storage.open(dataset.file.name, "rb") as handle:
            return fingerprints.file_sha256(handle)
    except (OSError, ValueError):
        return MISSING_FILE


def check_dataset_file(*, dataset_id: int) -> str:
    """Re-hash a dataset's stored file (a task; never in a request) and record
    whether it still holds the bytes hashed at upload. A file that differs or
    is missing is logged at ERROR: issuance from it is refused."""
    dataset = LandCoverDataset.objects.get(pk=dataset_id)
    stored = stored_file_sha256(dataset)
    if stored == MISSING_FILE:
        outcome = LandCoverDataset.FileStatus.MISSING
    elif stored == dataset.sha256:
        outcome = LandCoverDataset.FileStatus.MATCHES
    else:
        outcome = LandCoverDataset.FileStatus.DIFFERS
    LandCoverDataset.objects.filter(pk=dataset.pk).update(
        file_status=outcome, file_checked_at=timezone.now()
    )
    if outcome != LandCoverDataset.FileStatus.MATCHES:
        logger.error(
            "Land-cover dataset %s: the stored file %s is %s (SHA-256 at upload %s).",
            dataset.pk,
            dataset.file.name,
            outcome,
            dataset.sha256,
        )
    return outcome


def schedule_dataset_check(dataset_id: int) -> bool:
    """Queue a re-check of one dataset's file; a broker that is down is logged
    (the weekly re-check catches up). True if the broker took it."""
    from estimation.tasks import check_dataset_file_task  # it imports this module

    try:
        check_dataset_file_task.delay(dataset_id)
    except BROKER_ERRORS:
        logger.exception(
            "The file check of land-cover dataset %s could not be queued.", dataset_id
        )
        return False
    return True


def schedule_dataset_checks() -> int:
    """Queue a re-check of every dataset's file, one task each (weekly)."""
    queued = 0
    for dataset_id in LandCoverDataset.objects.order_by("pk").values_list(
        "pk", flat=True
    ):
        if not schedule_dataset_check(dataset_id):
            break
        queued += 1
    return queued
