"""Helpers that build projects through the registry's services."""

from datetime import date

import pyproj
from django.contrib.gis.geos import MultiPolygon, Polygon

from registry import services
from registry.boundaries import normalize_geometry
from registry.models import AdministrativeDivision

# A point well inside Dafang County (520521).
DAFANG = (105.60, 27.14)
GEOD = pyproj.Geod(ellps="WGS84")


def offset_lon(lat: float, metres: float) -> float:
    """Degrees of longitude that span ``metres`` eastwards at ``lat``."""
    lon, _lat, _back = GEOD.fwd(0.0, lat, 90, metres)
    return lon


def square(lon: float, lat: float, side_m: float) -> MultiPolygon:
    """A lon/lat-aligned quadrangle with sides of ``side_m`` metres (south and west
    edges) whose south-west corner is at (lon, lat); very nearly side_m² in area."""
    _lon, north, _back = GEOD.fwd(lon, lat, 0, side_m)
    dlat = north - lat
    dlon = offset_lon(lat + dlat / 2, side_m)
    ring = (
        (lon, lat),
        (lon + dlon, lat),
        (lon + dlon, lat + dlat),
        (lon, lat + dlat),
        (lon, lat),
    )
    return MultiPolygon(Polygon(ring), srid=4326)


def make_project(
    *, actor, owner, geometry=None, county="520521", name="测试项目", **details
):
    geometry = geometry or square(*DAFANG, 1000)
    return services.create_project(
        actor=actor,
        details=services.ProjectDetails(
            name_zh=name,
            name_en=details.pop("name_en", "Test project"),
            owner=owner,
            county=AdministrativeDivision.objects.get(adcode=county),
            crediting_start=details.pop("crediting_start", date(2021, 1, 1)),
            crediting_end=details.pop("crediting_end", date(2050, 12, 31)),
            ecosystem_focus=details.pop("ecosystem_focus", "forest"),
            description=details.pop("description", ""),
        ),
        boundary=normalize_geometry(geometry),
    )
