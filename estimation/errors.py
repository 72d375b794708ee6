"""Translated messages for the stable error codes of the pure modules (which
speak English to developers and codes to everyone else)."""

from django.utils.translation import gettext_lazy as _

AREA_MESSAGES = {
    "remote_path": _(
        "The land-cover file must be a file stored by the registry; remote and "
        "virtual paths are not opened."
    ),
    "unsupported_driver": _(
        "The land-cover file must be a GeoTIFF (including Cloud-Optimized GeoTIFF)."
    ),
    "unreadable": _(
        "The land-cover file could not be read: it is damaged or not a raster. "
        "Export it again and upload the new file."
    ),
    "too_large": _(
        "The raster's dimensions are beyond what the registry accepts (at most 2 "
        "billion pixels). Clip it to the area of interest."
    ),
    "multiband": _(
        "The raster has several bands; upload a single band of class codes."
    ),
    "not_categorical": _(
        "The raster holds decimal numbers, not class codes. Upload the land-cover "
        "classes as whole numbers."
    ),
    "no_crs": _(
        "The raster does not say which coordinate system it uses. Save it with its "
        "coordinate system and upload it again."
    ),
    "unsupported_crs": _(
        "The raster's coordinate system cannot be used to measure areas. Reproject "
        "it to WGS 84, CGCS2000 or an equal-area projection."
    ),
    "rotated_grid": _("Rotated or skewed rasters are not supported."),
    "invalid_boundary": _("The boundary is not a valid polygon."),
    "no_overlap": _(
        "The boundary lies entirely outside the land-cover map. Choose a map that "
        "covers the project."
    ),
    "class_field": _("The land-use layer has lost its class-code field."),
    "unreadable_polygon": _(
        "A polygon of the land-use layer could not be read: the file is damaged "
        "or holds curved geometries. Export it again with plain polygons."
    ),
}

CALCULATION_MESSAGES = {
    "float": _("Numbers must be exact decimals."),
    "not_a_number": _("A value is not a number."),
    "period": _("The monitoring period must be at least one day long."),
    "price": _("The carbon price cannot be negative."),
    "pools": _(
        "The methodology has no complete carbon pools (above, below, soil, dead) "
        "for an ecosystem found in the maps."
    ),
}


def area_error_message(error) -> str:
    return str(AREA_MESSAGES.get(error.code, AREA_MESSAGES["unreadable"]))


def calculation_error_message(error) -> str:
    return str(CALCULATION_MESSAGES.get(error.code, error))


# Why a run stopped when the cause was not in its inputs: shown in the reader's
# language from the stored code (the worker has no request language), and
# never the raw exception, which goes to the log.
RUN_FAILURE_MESSAGES = {
    "io_error": _(
        "The land-cover file could not be read while the estimate was computed. "
        "Retry the run; if it fails again, tell the registry operator."
    ),
    "database_error": _(
        "The database could not be reached while the estimate was computed. "
        "Retry the run."
    ),
    "out_of_memory": _(
        "The estimate needed more memory than the server has. Retry it later or "
        "tell the registry operator."
    ),
    "time_limit": _(
        "The estimate took longer than the time limit and was stopped. Tell the "
        "registry operator."
    ),
    "worker_lost": _(
        "The worker computing this estimate stopped, twice. Retry the run; the "
        "registry operator has been told."
    ),
    "internal_error": _(
        "The estimate stopped because of an unexpected error, which has been "
        "logged for the registry operator. Retry the run."
    ),
}


def run_failure_message(code: str) -> str:
    return str(RUN_FAILURE_MESSAGES.get(code, RUN_FAILURE_MESSAGES["internal_error"]))
