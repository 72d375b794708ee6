"""Areas per class of land-use polygons (Third National Land Survey style: a
polygon layer with a class-code field) inside a boundary.

Files are opened through ``registry.boundaries.open_polygon_layer``, with the same
checks as boundary uploads. Each polygon is moved to lon/lat, clipped to the
boundary and measured on the WGS84 ellipsoid.
"""

from collections.abc import Callable
from pathlib import Path

import shapely
from django.contrib.gis.gdal import OGRGeometry
from django.contrib.gis.gdal.error import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from common import geodesy
from registry.boundaries import open_polygon_layer

MAX_FEATURES = 2_000_000
LISTED_CODES = 200


class LandUseError(Exception):
    """A land-use file that cannot be measured; ``code`` names the problem."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _code(value) -> str:
    return str(value).strip() if value is not None else ""


def describe(path: Path, *, class_field: str) -> dict:
    """What an upload holds: CRS, feature count, the class codes it uses. Refuses
    a file without polygons or without ``class_field`` (ValidationError)."""
    with open_polygon_layer(path) as (layer, srid):
        if class_field not in layer.fields:
            raise ValidationError(
                {
                    "class_field": _(
                        "The layer has no field “%(field)s”. Its fields are: "
                        "%(fields)s."
                    )
                    % {"field": class_field, "fields": ", ".join(layer.fields)}
                },
                code="class_field",
            )
        if len(layer) > MAX_FEATURES:
            raise ValidationError(
                _("The layer has more than %(limit)s polygons.")
                % {"limit": MAX_FEATURES},
                code="too_large",
            )
        codes = sorted({_code(feature.get(class_field)) for feature in layer})
        return {
            "crs": f"EPSG:{srid}",
            "srid": srid,
            "features": len(layer),
            "codes": codes[:LISTED_CODES],
            "extent": list(layer.extent.tuple),
        }


def class_areas(
    path: Path,
    boundary: shapely.Geometry,
    *,
    class_field: str,
    progress: Callable[[float], None] | None = None,
) -> dict[str, float]:
    """Square metres of each class code inside ``boundary`` (lon/lat)."""
    shapely.prepare(boundary)
    areas: dict[str, float] = {}
    with open_polygon_layer(Path(path)) as (layer, srid):
        if class_field not in layer.fields:
            raise LandUseError("class_field", f"no field {class_field}")
        window = GEOSGeometry(boundary.envelope.wkt, srid=4326)
        if srid != 4326:
            window.transform(srid)
        layer.spatial_filter = OGRGeometry(window.wkt)
        total = max(1, len(layer))
        for index, feature in enumerate(layer, 1):
            try:
                geometry = feature.geom.geos
                geometry.srid = srid
                if srid != 4326:
                    geometry.transform(4326)
            except (GDALException, GEOSException, TypeError):
                raise LandUseError(
                    "unreadable", "a polygon could not be read"
                ) from None
            shape = shapely.from_wkb(bytes(geometry.wkb))
            if shapely.intersects(boundary, shape):
                clipped = shapely.intersection(boundary, shape)
                for part in shapely.get_parts(shapely.get_parts(clipped)):
                    if part.geom_type == "Polygon":
                        code = _code(feature.get(class_field))
                        square_metres = geodesy.geodesic_area_m2(part)
                        areas[code] = areas.get(code, 0.0) + square_metres
            if progress and index % 500 == 0:
                progress(index / total)
    if progress:
        progress(1.0)
    return areas
