"""Geodesy, single-sourced: areas on the WGS84 ellipsoid and the file
signature of a GeoTIFF. Pure (pyproj and shapely), no Django."""

import pyproj
import shapely

# The one ellipsoid every area in the registry is measured on.
WGS84 = pyproj.Geod(ellps="WGS84")

# Classic TIFF and BigTIFF, little- and big-endian: the first four bytes.
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(head: bytes) -> bool:
    """Whether a file that starts with ``head`` is a TIFF (GeoTIFF, COG)."""
    return head[:4] in TIFF_SIGNATURES


def geodesic_area_m2(geometry: shapely.Geometry) -> float:
    """Area in square metres on WGS84 of a lon/lat geometry; lines and points
    add nothing. pyproj signs each ring by its orientation, so rings are
    oriented first (a hole drawn the same way round as its shell would
    otherwise add its area), and polygons are taken one by one (two levels: a
    collection may hold multipolygons)."""
    parts = shapely.get_parts(shapely.get_parts(shapely.orient_polygons(geometry)))
    return sum(abs(WGS84.geometry_area_perimeter(part)[0]) for part in parts)


def ring_area_m2(lons, lats) -> float:
    """Area in square metres on WGS84 of one closed lon/lat ring with geodesic
    edges, whatever its orientation."""
    return abs(WGS84.polygon_area_perimeter(lons, lats)[0])
