"""Area of each class of a categorical land-cover raster inside a boundary.

A project's sink is the sum over ecosystems of area x coefficient, so area is
the dominant error term. This module measures it exactly, with bounded memory.
Pure computation: numpy, numba, rasterio, shapely and pyproj, no Django.

The boundary
    A (Multi)Polygon in EPSG:4326 whose edges are geodesics on WGS84, as
    pyproj measures them and as the registry computes a project's area
    (registry/boundaries.py). Edges are cut into pieces of at most 0.0005
    degree along their geodesics, so the straight pieces the rest works with
    follow them to ~1e-9 of the area. ``boundary_m2`` is pyproj's area.

Fractional coverage, from the edges
    The boundary is put into pixel coordinates and each edge is cut at every
    row and column line. By Green's theorem the covered area of a pixel is a
    sum over the edge pieces inside it, plus the running sum of the pieces to
    its left in the same row (the "coverage accumulation" of font
    rasterisers). A pixel crossed by no piece takes that running value: the
    whole pixel inside, nothing outside, or an exact fraction where a
    horizontal edge runs along the row. So the interior comes out as row runs,
    whose pixels a compiled loop counts, and only the pixels the boundary
    crosses are handled one by one: no pixel mask, no GEOS call per pixel.

True pixel areas
    Geographic raster (whatever datum it is labelled with, the boundary's
    lon/lat is taken as the raster's): the pieces are integrated against the
    WGS84 quadrangle area A = b^2 dlambda / 2 [f(phi2) - f(phi1)], with
    f(phi) = sin(phi) / (1 - e^2 sin^2 phi) + atanh(e sin phi) / e, so whole
    rows and partial pixels alike are measured on the ellipsoid. A nominal
    30 m square overstates Bijie (27 N) by 12%, a sphere of radius a by 0.4%.
    Within a pixel the area density changes with latitude; a second-order term
    per piece accounts for it, so a partial pixel is exact to ~(pixel
    height)^3 instead of the 2e-4 that lon/lat fractions of a 0.05 degree
    pixel would give.

    Equal-area projected raster (Albers, LAEA, EASE-Grid 2.0, ...): the
    constant |a * e| of the geotransform, once the Jacobian below agrees with
    it at 25 points (an Albers on another ellipsoid, or Mollweide, which PROJ
    computes on a sphere, fails the check and takes the general path).

    Any other projection (UTM, Gauss-Kruger, Web Mercator, ...): a pixel's
    area is its nominal area x |det d(lambda, phi) / d(x, y)| x the WGS84 area
    element b^2 cos(phi) / (1 - e^2 sin^2 phi)^2, with the Jacobian of the
    inverse projection from central differences, on nodes ~3 km apart and
    bilinear in between. The CRS's own lon/lat are measured on WGS84 (for
    Beijing 1954 or Xian 1980 their own ellipsoid would differ by 3e-5, and
    the sum would no longer match the boundary's WGS84 area). Unlike
    ``pyproj.Proj.get_factors``, which is relative to the projection's own
    figure, this is right for spherical formulas on the WGS84 datum too
    (EPSG:3857: 0.4%). The boundary itself is put into the raster's CRS with
    pyproj's datum transformation, so it lands on the right pixels.

Windowed reads
    Only the boundary's extent is read, in windows of whole raster blocks of
    at most ``max_window_pixels`` pixels, with GDAL's block cache capped at
    64 MB, so memory depends on the window, not on the raster. A thread reads
    (and inflates, without the GIL) the next window while the calling thread
    works out the coverage of the one after and counts the current one.

Many boundaries
    ``class_areas_of_each`` measures a project's parcels, or every project of a
    county, in one pass: the boundaries are taken in the order they lie on the
    raster, a few thousand at a time; their coverage is worked out in one go
    (pixels sorted by boundary, row and column); and each window of the raster
    is read once for all the boundaries on it, in bands of whole blocks, with
    the blocks between boundaries far apart left unread. Each boundary gets
    the very floats ``class_areas`` gives it alone, summed in the same order,
    so overlapping boundaries each get their whole area. Boundaries
    ``class_areas`` would read in more than one window, or that reach beyond
    the raster, are measured one by one as it does.

Compiled loops (numba)
    Class codes are counted per run of pixels that share a coverage value, in
    exact integers, and multiplied by that value once (a lon/lat raster's
    rows each have one), at ~0.7 ns a uint8 pixel, less than GDAL takes to
    inflate one; ``np.bincount`` took ~2.5 ns, as it converts the codes to
    intp. Pixels of different areas (the Jacobian path) or more than
    ``_MAX_COUNTED_CODES`` codes are summed one by one instead. The cuts of
    the boundary at row and column lines are compiled too. They release the
    GIL, so counting and reading overlap on two cores. Each loop compiles on
    first use in a process (a few seconds, or ~0.3 s loading numba's cache in
    __pycache__); ``warm_up`` does it up front.

Nothing is dropped silently: nodata pixels inside the boundary and the part of
the boundary beyond the raster (geodesic) are reported, and ``covered_m2 +
nodata_m2 + outside_raster_m2`` equals ``boundary_m2`` within
``INVARIANT_RTOL``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import numba
import numpy as np
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window

from common import geodesy

MAX_RASTER_PIXELS = 2_000_000_000  # width x height x bands, checked before reading
MAX_RASTER_SIDE = 4_000_000
DEFAULT_MAX_WINDOW_PIXELS = 1 << 24  # 16 MB of uint8 per window
GDAL_CACHE_BYTES = 64 << 20
INVARIANT_RTOL = 1e-6  # covered + nodata + outside vs boundary_m2
# Many boundaries: how many, and how many pixels of extent (width + height),
# are worked out together; what is measured with others rather than alone.
_BATCH_SIZE = 4096
_BATCH_EXTENT = 1 << 16
_SHARED_MAX_SIDE = 1024  # pixels
_SHARED_MIN_BAND_ROWS = 256

# Projection methods whose constant pixel area is used once the Jacobian agrees.
EQUAL_AREA_METHODS = frozenset(
    {
        "Albers Equal Area",
        "Lambert Azimuthal Equal Area",
        "Lambert Cylindrical Equal Area",
        "Equal Earth",
        "Sinusoidal",
        "Mollweide",
    }
)

# Other raster formats, reported as unsupported rather than unreadable.
_OTHER_RASTER_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"\x00\x00\x00\x0cjP  ",  # JPEG 2000
    b"\xffO\xffQ",  # JPEG 2000 codestream
    b"\x89HDF",
    b"CDF\x01",
    b"CDF\x02",
    b"EHFA_HEADER_TAG",  # ERDAS Imagine
    b"GRIB",
    b"ncols",  # ESRI ASCII grid
    b"RIFF",  # WebP
)
# Longest straight piece (degrees) standing for a geodesic: a geodesic and its
# chord of length L enclose ~L^3 tan(phi) / 12R, 0.001 m2 for 55 m at 27 N.
_STEP_DEG = 0.0005


class AreaError(Exception):
    """Bad input. ``code`` is stable (the web layer translates by it)."""

    code: ClassVar[str] = "area_error"
    boundary_index: int | None = None  # which of many boundaries, if several

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RemotePathError(AreaError):
    code = "remote_path"


class UnsupportedDriverError(AreaError):
    code = "unsupported_driver"


class UnreadableError(AreaError):
    code = "unreadable"


class TooLargeError(AreaError):
    code = "too_large"


class MultibandError(AreaError):
    code = "multiband"


class NotCategoricalError(AreaError):
    code = "not_categorical"


class NoCrsError(AreaError):
    code = "no_crs"


class UnsupportedCrsError(AreaError):
    code = "unsupported_crs"


class RotatedGridError(AreaError):
    code = "rotated_grid"


class InvalidBoundaryError(AreaError):
    code = "invalid_boundary"


class NoOverlapError(AreaError):
    code = "no_overlap"


@dataclass(frozen=True)
class ClassAreas:
    """Areas inside one boundary, in square metres on the ellipsoid."""

    area_m2_by_class: dict[int, float]  # raster class code -> area
    nodata_m2: float  # on nodata (or masked) pixels
    outside_raster_m2: float  # beyond the raster's extent, geodesic
    boundary_m2: float  # geodesic area of the whole boundary (WGS84)
    pixels_read: int
    area_model: str  # "wgs84_rows", "equal_area" or "jacobian"

    @property
    def covered_m2(self) -> float:
        return sum(self.area_m2_by_class.values())

    @property
    def accounted_m2(self) -> float:
        """covered + nodata + outside: boundary_m2 within INVARIANT_RTOL."""
        return self.covered_m2 + self.nodata_m2 + self.outside_raster_m2


# --- the boundary ------------------------------------------------------------


def _checked_boundary(boundary: shapely.Geometry) -> shapely.Geometry:
    if not isinstance(boundary, shapely.Polygon | shapely.MultiPolygon):
        raise InvalidBoundaryError("The boundary must be a Polygon or MultiPolygon.")
    if boundary.is_empty or not boundary.is_valid or boundary.area == 0:
        raise InvalidBoundaryError("The boundary is empty or not a valid polygon.")
    west, south, east, north = boundary.bounds
    if west < -180 or east > 360 or south < -90 or north > 90:
        raise InvalidBoundaryError("The boundary is not in lon/lat degrees.")
    return shapely.force_2d(boundary)


_T = TypeVar("_T")
_Rings = list[tuple[np.ndarray, bool]]  # (closed ring's xy, is it an exterior)


def _rings(geometry: shapely.Geometry) -> _Rings:
    rings = []
    for polygon in shapely.get_parts(geometry):
        rings.append((shapely.get_coordinates(polygon.exterior), True))
        rings += [(shapely.get_coordinates(r), False) for r in polygon.interiors]
    return rings


def _polygons(rings: _Rings) -> shapely.Geometry:
    """The (Multi)Polygon of rings listed as exterior, then its holes."""
    polygons: list[tuple[np.ndarray, list[np.ndarray]]] = []
    for xy, exterior in rings:
        if exterior:
            polygons.append((xy, []))
        else:
            polygons[-1][1].append(xy)
    parts = [shapely.Polygon(shell, holes) for shell, holes in polygons]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _geodesic_area_m2(rings: _Rings) -> float:
    """pyproj's area of lon/lat rings with geodesic edges, on WGS84."""
    total = 0.0
    for xy, exterior in rings:
        ring_m2 = geodesy.ring_area_m2(xy[:, 0], xy[:, 1])
        total += ring_m2 if exterior else -ring_m2
    return total


@dataclass(frozen=True)
class _RingSet:
    """The closed rings of one or many boundaries, as flat arrays: ring i is
    ``xy[start[i]:start[i + 1]]``, of boundary ``owner[i]``, each polygon's
    exterior before its holes (as ``_rings`` lists them), boundaries in order."""

    xy: np.ndarray
    start: np.ndarray
    exterior: np.ndarray
    owner: np.ndarray

    @classmethod
    def of(cls, boundaries: np.ndarray) -> _RingSet:
        parts, part_owner = shapely.get_parts(boundaries, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        xy, point_ring = shapely.get_coordinates(rings, return_index=True)
        start = np.searchsorted(point_ring, np.arange(len(rings) + 1))
        exterior = np.concatenate([[True], ring_part[1:] != ring_part[:-1]])
        return cls(xy, start, exterior, part_owner[ring_part])

    def with_xy(self, xy: np.ndarray) -> _RingSet:
        return _RingSet(xy, self.start, self.exterior, self.owner)

    def point_owner(self) -> np.ndarray:
        return np.repeat(self.owner, np.diff(self.start))

    def of_owner(self, owner: int) -> _Rings:
        """One boundary's rings, as ``_rings`` gives them."""
        first, last = np.searchsorted(self.owner, [owner, owner + 1])
        return [
            (self.xy[self.start[i] : self.start[i + 1]], bool(self.exterior[i]))
            for i in range(first, last)
        ]

    def geodesic_areas_m2(self, count: int) -> list[float]:
        """pyproj's area of each of ``count`` boundaries, as ``_geodesic_area_m2``."""
        totals = [0.0] * count
        for i, owner in enumerate(self.owner.tolist()):
            xy = self.xy[self.start[i] : self.start[i + 1]]
            ring_m2 = geodesy.ring_area_m2(xy[:, 0], xy[:, 1])
            totals[owner] += ring_m2 if self.exterior[i] else -ring_m2
        return totals

    def densified(self) -> _RingSet:
        """The rings with points added along their geodesic edges, so that their
        straight pieces (in lon/lat or projected) follow the edges pyproj
        measures. Each point's values depend on its edge alone, however many
        rings are densified together."""
        xy, start = self.xy, self.start
        edge = np.ones(len(xy), bool)  # an edge starts at each point but a ring's last
        edge[start[1:] - 1] = False
        edge = np.flatnonzero(edge)
        lon0, lat0, lon1, lat1 = (
            xy[edge, 0],
            xy[edge, 1],
            xy[edge + 1, 0],
            xy[edge + 1, 1],
        )
        span = np.maximum(np.abs(lon1 - lon0), np.abs(lat1 - lat0))
        pieces = np.ones(len(xy), np.intp)  # a ring's last point stays one point
        pieces[edge] = np.maximum(np.ceil(span / _STEP_DEG), 1).astype(np.intp)
        if pieces.max() == 1:
            return self
        # geodesics only where a piece is added (each costs ~0.6 us)
        long = np.flatnonzero(pieces > 1)
        azimuth, distance = np.zeros(pieces.size), np.zeros(pieces.size)
        azimuth[long], _, distance[long] = geodesy.WGS84.inv(
            xy[long, 0], xy[long, 1], xy[long + 1, 0], xy[long + 1, 1]
        )
        point = np.repeat(np.arange(pieces.size), pieces)
        ends = np.cumsum(pieces)
        step = np.arange(point.size) - np.repeat(ends - pieces, pieces)
        dense = xy[point]  # the vertices exactly as given
        inner = np.flatnonzero(step)  # and points along the edges after them
        p, start_lon, start_lat = point[inner], dense[inner, 0], dense[inner, 1]
        lon, lat, _ = geodesy.WGS84.fwd(
            start_lon, start_lat, azimuth[p], distance[p] * step[inner] / pieces[p]
        )
        dense[inner, 0] = start_lon + (lon - start_lon + 180) % 360 - 180  # the ring's
        dense[inner, 1] = lat
        dense_start = np.concatenate([[0], ends])[start]
        return _RingSet(dense, dense_start, self.exterior, self.owner)


# --- pixel areas on the ellipsoid ---------------------------------------------


@dataclass(frozen=True)
class _Ellipsoid:
    a: float
    inv_f: float

    @property
    def b(self) -> float:
        return self.a * (1 - 1 / self.inv_f)

    @property
    def e(self) -> float:
        f = 1 / self.inv_f
        return math.sqrt(f * (2 - f))

    def area_element(self, phi: np.ndarray) -> np.ndarray:
        """Square metres per square radian of lon/lat at latitude phi."""
        es = self.e * np.sin(phi)
        return self.b**2 * np.cos(phi) / (1 - es * es) ** 2


_WGS84 = _Ellipsoid(6378137.0, 298.257223563)


def pixel_row_areas_m2(
    transform: Affine, height: int, *, row_start: int = 0
) -> np.ndarray:
    """Area (m2) of one pixel in each row of a geographic raster, on WGS84.

    Rows ``row_start`` to ``row_start + height - 1``; a row's pixels are equal.
    """
    edges = np.arange(row_start, row_start + height + 1, dtype=np.float64)
    return np.diff(_GeographicMeasure(transform).at(edges)[0])


class _Measure(Protocol):
    """How coverage is measured along y: the cumulative area of one pixel column
    from row 0 to fractional row y, and its derivative."""

    area_model: str
    pixel_area: float  # a typical pixel's area, in the measure's unit

    def at(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cumulative area at fractional rows y, and its derivative."""
        ...


class _GeographicMeasure:
    """Lon/lat grid: cumulative quadrangle area on WGS84, in m2."""

    area_model = "wgs84_rows"

    def __init__(self, transform: Affine):
        self._lat0 = math.radians(transform.f)
        self._dlat = math.radians(transform.e)
        # the sign makes the area grow with the row index
        half_width = _WGS84.b**2 * abs(math.radians(transform.a)) / 2
        self._scale = math.copysign(half_width, transform.e)
        self.pixel_area = float(np.diff(self.at(np.array([0.0, 1.0]))[0])[0])

    def at(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # b^2 dlambda / 2 f(phi), f as in the module docstring, and its slope
        phi = self._lat0 + self._dlat * y
        sin = np.sin(phi)
        es = _WGS84.e * sin
        q = 1 - es * es
        cumulative = self._scale * (sin / q + np.arctanh(es) / _WGS84.e)
        density = self._scale * self._dlat * 2 * np.cos(phi) / (q * q)
        return cumulative, density


class _LinearMeasure:
    """Equal-area grid (m2), or fractions of a pixel (pixel_area=1)."""

    def __init__(self, pixel_area: float, area_model: str):
        self.pixel_area = pixel_area
        self.area_model = area_model

    def at(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.pixel_area * y, np.full_like(y, self.pixel_area)


class _JacobianAreas:
    """Pixel areas of a projected raster from the inverse projection's Jacobian."""

    def __init__(self, crs: CRS, transform: Affine):
        self._to_lonlat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
        self._transform = transform
        metre = 1 / crs.axis_info[0].unit_conversion_factor
        # differences over 100 m: truncation ~1e-16, rounding ~1e-10
        self._step = 50 * metre
        pixel_m = abs(transform.a) / metre
        self._node_step = int(min(64, max(2, 3000 // pixel_m)))

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Area (m2) of a pixel centred at fractional (row, col)."""
        t = self._transform
        x, y, h = t.c + t.a * cols, t.f + t.e * rows, self._step
        dlon_x, dlat_x = self._difference(x + h, y, x - h, y)
        dlon_y, dlat_y = self._difference(x, y + h, x, y - h)
        jacobian = np.abs(dlon_x * dlat_y - dlon_y * dlat_x) / (4 * h * h)
        _, lat = self._to_lonlat.transform(x, y)
        element = _WGS84.area_element(np.radians(lat))
        return abs(t.a * t.e) * jacobian * element

    def _difference(self, x1, y1, x0, y0) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) at point 1 minus at point 0, in radians."""
        lon1, lat1 = self._to_lonlat.transform(x1, y1)
        lon0, lat0 = self._to_lonlat.transform(x0, y0)
        dlon = (np.asarray(lon1) - lon0 + 180) % 360 - 180
        return np.radians(dlon), np.radians(np.asarray(lat1) - lat0)

    def window(self, window: Window) -> np.ndarray:
        """Pixel areas of a window, bilinear between exact nodes."""
        rows = _nodes(window.row_off, window.height, self._node_step)
        cols = _nodes(window.col_off, window.width, self._node_step)
        grid_r, grid_c = np.meshgrid(rows + 0.5, cols + 0.5, indexing="ij")
        at_nodes = self.at(grid_r, grid_c)
        all_cols = np.arange(window.col_off, window.col_off + window.width)
        all_rows = np.arange(window.row_off, window.row_off + window.height)
        along_rows = _interp_axis0(at_nodes.T, cols, all_cols).T
        return _interp_axis0(along_rows, rows, all_rows)


def _nodes(start: int, size: int, step: int) -> np.ndarray:
    """start, start + step, ... and always the last index."""
    nodes = np.arange(start, start + size, step, dtype=np.float64)
    last = start + size - 1
    return nodes if nodes[-1] == last else np.append(nodes, last)


def _interp_axis0(values: np.ndarray, nodes: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (given at ``nodes``) interpolated linearly to ``at``."""
    if nodes.size == 1:
        return np.repeat(values, at.size, axis=0)
    i = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, nodes.size - 2)
    w = ((at - nodes[i]) / (nodes[i + 1] - nodes[i]))[:, None]
    return values[i] * (1 - w) + values[i + 1] * w


# --- the raster file ---------------------------------------------------------


def _checked_path(raster_path: str | os.PathLike[str]) -> str:
    """The resolved absolute path of an existing regular local file."""
    if not isinstance(raster_path, str | os.PathLike):
        raise RemotePathError("The raster must be given as a local file path.")
    path = os.fspath(raster_path)
    if not isinstance(path, str):  # a bytes path
        raise RemotePathError("The raster must be given as a local file path.")
    if path.startswith("/vsi") or "://" in path:
        raise RemotePathError("Only local raster files are accepted, not URLs.")
    resolved = os.path.realpath(path)
    if resolved.startswith("/vsi") or not os.path.isfile(resolved):
        raise RemotePathError("The raster is not an existing local file.")
    return resolved


def _check_format(path: str) -> None:
    """GeoTIFF (COG included), by its first bytes, before GDAL sees the file."""
    with open(path, "rb") as f:
        head = f.read(64)
    if geodesy.is_tiff(head):
        return
    # XML covers VRT and GDAL's other descriptions that can point anywhere
    if head.lstrip().startswith(b"<") or head.startswith(_OTHER_RASTER_MAGIC):
        raise UnsupportedDriverError(
            "Only GeoTIFF rasters are accepted, not VRT or other formats."
        )
    raise UnreadableError("The file is not a readable raster.")


def _open(path: str) -> rasterio.DatasetReader:
    try:
        with _gdal_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path, driver="GTiff")
    except RasterioError as exc:
        raise UnreadableError("The file is not a readable GeoTIFF.") from exc


def _check_header(src: rasterio.DatasetReader) -> None:
    width, height, bands = src.width, src.height, src.count
    if not (0 < width <= MAX_RASTER_SIDE and 0 < height <= MAX_RASTER_SIDE):
        raise TooLargeError(f"The raster's dimensions {width} x {height} are absurd.")
    if width * height * bands > MAX_RASTER_PIXELS:
        raise TooLargeError(
            f"The raster has {width * height * bands:,} pixels; "
            f"at most {MAX_RASTER_PIXELS:,} are accepted."
        )
    if bands != 1:
        raise MultibandError(f"The raster has {bands} bands; one class band is needed.")
    if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        raise NotCategoricalError(
            f"The raster holds {src.dtypes[0]} values, not integer class codes."
        )
    if src.crs is None or src.transform.is_identity:
        raise NoCrsError("The raster has no coordinate reference system.")
    if src.transform.b != 0 or src.transform.d != 0:
        raise RotatedGridError("Rotated or sheared raster grids are not supported.")


# --- coverage of a band of rows ----------------------------------------------


@dataclass(frozen=True)
class _Edges:
    """Boundary edges in pixel coordinates (x = column, y = row), horizontal
    ones left out (they add nothing below), oriented so coverage is positive;
    ``group``: the boundary of each, ``group_bounds``: (x_min, y_min, x_max,
    y_max) of each boundary."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    group: np.ndarray
    group_bounds: np.ndarray

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The first (for ``class_areas``, the only) boundary's bounds."""
        x_min, y_min, x_max, y_max = self.group_bounds[0]
        return x_min, y_min, x_max, y_max

    @classmethod
    def of(cls, rings: _RingSet) -> _Edges:
        xy, start = rings.xy, rings.start
        x, y = xy[:, 0], xy[:, 1]  # per column: reducing (n, 2) is slow
        # shoelace per ring; not with @, which OpenBLAS threads make ~1000x slower
        terms = x[:-1] * y[1:] - x[1:] * y[:-1]
        terms[start[1:-1] - 1] = 0  # from one ring's last point to the next ring
        twice_area = np.add.reduceat(terms, start[:-1])
        reverse = (twice_area > 0) != rings.exterior
        point_ring = np.repeat(np.arange(reverse.size), np.diff(start))
        at = np.arange(len(xy))
        flipped = reverse[point_ring]
        order = np.where(
            flipped, start[point_ring] + start[point_ring + 1] - 1 - at, at
        )
        ox, oy = x[order], y[order]
        begins = np.ones(
            len(xy), bool
        )  # an edge begins at each point but a ring's last
        begins[start[1:] - 1] = False
        begins = np.flatnonzero(begins)
        sloped = begins[oy[begins] != oy[begins + 1]]
        owner = rings.point_owner()
        firsts = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
        group_bounds = np.column_stack(
            [
                np.minimum.reduceat(x, firsts),
                np.minimum.reduceat(y, firsts),
                np.maximum.reduceat(x, firsts),
                np.maximum.reduceat(y, firsts),
            ]
        )
        return cls(
            ox[sloped], oy[sloped], ox[sloped + 1], oy[sloped + 1],
            owner[sloped], group_bounds,
        )  # fmt: skip


@dataclass(frozen=True)
class _Coverage:
    """Covered area of the pixels of some rows, in the measure's unit.

    ``cell_*``: each pixel the boundary crosses. ``run_*``: row runs of pixels
    [c0, c1) between crossed ones, each pixel covering ``v``. ``*_group``:
    the boundary each belongs to, when several are measured together.
    """

    cell_row: np.ndarray
    cell_col: np.ndarray
    cell_area: np.ndarray
    run_row: np.ndarray
    run_c0: np.ndarray
    run_c1: np.ndarray
    run_v: np.ndarray
    cell_group: np.ndarray | None = None
    run_group: np.ndarray | None = None


def _clip_edges(
    edges: _Edges, r0: int, r1: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The parts of the edges with r0 <= y <= r1, endpoints kept exact."""
    x0, y0, x1, y1 = edges.x0, edges.y0, edges.x1, edges.y1
    if r0 <= edges.bounds[1] and edges.bounds[3] <= r1:
        return x0, y0, x1, y1
    sel = (np.minimum(y0, y1) < r1) & (np.maximum(y0, y1) > r0)
    x0, y0, x1, y1 = x0[sel], y0[sel], x1[sel], y1[sel]
    dx, dy = x1 - x0, y1 - y0
    ta = np.minimum(np.maximum((r0 - y0) / dy, 0), 1)
    tb = np.minimum(np.maximum((r1 - y0) / dy, 0), 1)
    t0, t1 = np.minimum(ta, tb), np.maximum(ta, tb)
    ax = np.where(t0 == 0, x0, x0 + t0 * dx)
    bx = np.where(t1 == 1, x1, x0 + t1 * dx)
    ay = np.where(t0 == 0, y0, np.minimum(np.maximum(y0 + t0 * dy, r0), r1))
    by = np.where(t1 == 1, y1, np.minimum(np.maximum(y0 + t1 * dy, r0), r1))
    return ax, ay, bx, by


@numba.njit(cache=True, nogil=True)
def _cut_points(ax, ay, bx, by):
    """Each segment's ends and its crossings of integer x and y, in order along
    it: (segment, x, y), by segment then position (at a corner, x first)."""
    n, total = ax.size, 2 * ax.size
    for i in range(n):  # crossings: integers strictly between the ends
        total += max(math.ceil(max(ax[i], bx[i])) - math.floor(min(ax[i], bx[i])), 1)
        total += max(math.ceil(max(ay[i], by[i])) - math.floor(min(ay[i], by[i])), 1)
        total -= 2
    segment = np.empty(total, np.int64)
    x, y = np.empty(total), np.empty(total)
    m = 0
    for i in range(n):
        x0, y0, x1, y1 = ax[i], ay[i], bx[i], by[i]
        # the next crossing of each kind along the segment, and the last
        kx, ky = _first_crossing(x0, x1), _first_crossing(y0, y1)
        ex, ey = _first_crossing(x1, x0), _first_crossing(y1, y0)
        dkx, dky = (1.0 if x1 > x0 else -1.0), (1.0 if y1 > y0 else -1.0)
        more_x = x1 != x0 and (kx - ex) * dkx <= 0
        more_y = y1 != y0 and (ky - ey) * dky <= 0
        segment[m], x[m], y[m] = i, x0, y0
        m += 1
        while more_x or more_y:
            sx = (kx - x0) / (x1 - x0) if more_x else 2.0
            sy = (ky - y0) / (y1 - y0) if more_y else 2.0
            segment[m] = i
            if sx <= sy:
                x[m], y[m] = kx, y0 + sx * (y1 - y0)
                more_x, kx = kx != ex, kx + dkx
            else:
                x[m], y[m] = x0 + sy * (x1 - x0), ky
                more_y, ky = ky != ey, ky + dky
            m += 1
        segment[m], x[m], y[m] = i, x1, y1
        m += 1
    return segment, x, y


@numba.njit(cache=True, nogil=True)
def _first_crossing(a, b):
    """The integer after a on the way to b (it may lie beyond b)."""
    return math.floor(a) + 1.0 if b > a else math.ceil(a) - 1.0


def _band_coverage(edges: _Edges, r0: int, r1: int, measure: _Measure) -> _Coverage:
    """Exact coverage of rows [r0, r1) (see the module docstring)."""
    return _pixel_coverage(*_clip_edges(edges, r0, r1), None, measure)


def _pixel_coverage(
    ax: np.ndarray,
    ay: np.ndarray,
    bx: np.ndarray,
    by: np.ndarray,
    group: np.ndarray | None,
    measure: _Measure,
) -> _Coverage:
    """Exact coverage of the pixels under the segments (a, b), per ``group`` of
    segments (one boundary each; None: all one). A group's numbers are the same
    floats whether it is measured alone or with others."""
    segment, x, y = _cut_points(ax, ay, bx, by)
    cumulative, density = measure.at(y)
    # pieces between consecutive cut points of a segment lie in one pixel each;
    # horizontal ones add nothing
    a = np.flatnonzero((segment[1:] == segment[:-1]) & (y[1:] != y[:-1]))
    if a.size == 0:
        none_i, none_f = np.zeros(0, np.int64), np.zeros(0)
        return _Coverage(
            none_i, none_i, none_f, none_i, none_i, none_i, none_f, none_i, none_i
        )
    b = a + 1
    row = np.floor((y[a] + y[b]) / 2).astype(np.int64)
    col = np.floor((x[a] + x[b]) / 2).astype(np.int64)
    d_cum = cumulative[b] - cumulative[a]
    # integral of (x - the pixel's right edge) d(cumulative) along the piece;
    # the second term is exact while the density changes linearly along it
    own = ((x[a] + x[b]) / 2 - (col + 1)) * d_cum
    own += (x[b] - x[a]) * (density[b] - density[a]) * (y[b] - y[a]) / 12
    # sum per pixel, pixels sorted by (group, row, col)
    g = np.zeros(1, np.int64) if group is None else group[segment[a]]
    row_min, col_min = row.min(), col.min()
    width = col.max() - col_min + 1
    key = (g * (row.max() - row_min + 1) + (row - row_min)) * width + (col - col_min)
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    own = np.add.reduceat(own[order], first)
    d_cum = np.add.reduceat(d_cum[order], first)
    row, col, line = row[order][first], col[order][first], key[first] // width
    g = np.zeros(row.size, np.int64) if group is None else g[order][first]
    # pieces to the left of each pixel in its row
    new_row = np.concatenate([[True], line[1:] != line[:-1]])
    new_group = np.concatenate([[True], g[1:] != g[:-1]])
    running = _running_in_rows(d_cum, new_row, new_group)
    cell_area = own - (running - d_cum)
    # a run lies between two crossed pixels of a row; rounding-level values are 0
    tiny = 1e-9 * measure.pixel_area
    cell_area[np.abs(cell_area) < tiny] = 0
    v = -running[:-1]
    run = np.flatnonzero(~new_row[1:] & (col[1:] > col[:-1] + 1) & (v > tiny))
    return _Coverage(
        cell_row=row,
        cell_col=col,
        cell_area=cell_area,
        run_row=row[run],
        run_c0=col[run] + 1,
        run_c1=col[run + 1],
        run_v=v[run],
        cell_group=g,
        run_group=g[run],
    )


@numba.njit(cache=True, nogil=True)
def _running_in_rows(d_cum, new_row, new_group):
    """Per pixel, the sum of ``d_cum`` over its row up to it: the running sum
    over its group's pixels less that before its row, as ``np.cumsum`` would
    add them for the group alone (so a boundary measured with others gets the
    same floats)."""
    out = np.empty(d_cum.size)
    total = before = 0.0
    for i in range(d_cum.size):
        if new_group[i]:
            total = before = 0.0
        elif new_row[i]:
            before = total
        total += d_cum[i]
        out[i] = total - before
    return out


def _clip_coverage(
    cov: _Coverage, col0: int, col1: int
) -> tuple[Window, _Coverage] | None:
    """The smallest window holding the coverage in columns [col0, col1), and that
    coverage in window coordinates; None if there is none."""
    if cov.cell_col.size == 0:
        return None
    if cov.cell_col.min() >= col0 and cov.cell_col.max() < col1:  # all of it
        cells, runs = cov.cell_area != 0, np.ones(cov.run_row.size, bool)
        c0, c1 = cov.run_c0, cov.run_c1
    else:
        cells = (cov.cell_col >= col0) & (cov.cell_col < col1) & (cov.cell_area != 0)
        c0, c1 = np.maximum(cov.run_c0, col0), np.minimum(cov.run_c1, col1)
        runs = c1 > c0
    if not cells.any() and not runs.any():
        return None
    rows = np.concatenate([cov.cell_row[cells], cov.run_row[runs]])
    cols = np.concatenate([cov.cell_col[cells], c0[runs], c1[runs] - 1])
    row_off, col_off = int(rows.min()), int(cols.min())
    window = Window(
        col_off, row_off, int(cols.max()) - col_off + 1, int(rows.max()) - row_off + 1
    )
    return window, _Coverage(
        cell_row=cov.cell_row[cells] - row_off,
        cell_col=cov.cell_col[cells] - col_off,
        cell_area=cov.cell_area[cells],
        run_row=cov.run_row[runs] - row_off,
        run_c0=c0[runs] - col_off,
        run_c1=c1[runs] - col_off,
        run_v=cov.run_v[runs],
    )


# --- counting classes in a window --------------------------------------------

_UINT8_CODES: list[int | None] = list(range(256))


def _dense_codes(
    block: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, list[int | None]]:
    """The block as small indices to count, and the class code of each.

    A uint8 block is its own index. Masked pixels get a last index, code None.
    """
    if block.dtype == np.uint8 and valid is None:
        return block, _UINT8_CODES
    lo, hi = int(block.min()), int(block.max())
    if block.dtype.itemsize <= 4 and hi - lo < 1 << 16:
        shifted = block.astype(np.int64) - lo
        present = np.flatnonzero(np.bincount(shifted.ravel(), minlength=hi - lo + 1))
        lut = np.zeros(hi - lo + 1, np.intp)
        lut[present] = np.arange(present.size)
        index, codes = lut[shifted], (present + lo).tolist()
    else:
        values, index = np.unique(block, return_inverse=True)
        index, codes = index.reshape(block.shape), values.tolist()
    if valid is not None:
        index = np.where(valid, index, len(codes))
        codes.append(None)
    return index.astype(np.uint16 if len(codes) <= 1 << 16 else np.intp), codes


# Compiled once per process and index type (see the module docstring).
_MAX_COUNTED_CODES = 4096  # beyond, areas are summed per pixel (see _count_runs)
_NO_AREAS = np.zeros((0, 0))


@numba.njit(cache=True, nogil=True)
def _count_runs(index, run_row, run_c0, run_c1, run_v, n_codes):
    """Covered area per code index of the row runs, each pixel covering run_v.

    Pixels are counted (exact integers, in four interleaved histograms so that
    repeated codes do not wait on each other), and the counts multiplied by v
    whenever v changes: once a row for a lon/lat raster, rarely otherwise.
    """
    sums = np.zeros(n_codes)
    counts = np.zeros((4, n_codes), np.int64)
    v = 0.0
    for k in range(run_row.size):
        if run_v[k] != v:
            for c in range(n_codes):
                n = counts[0, c] + counts[1, c] + counts[2, c] + counts[3, c]
                if n:
                    sums[c] += v * n
                    counts[0, c] = counts[1, c] = counts[2, c] = counts[3, c] = 0
            v = run_v[k]
        row = index[run_row[k]]
        j, end = run_c0[k], run_c1[k]
        while j + 4 <= end:
            counts[0, row[j]] += 1
            counts[1, row[j + 1]] += 1
            counts[2, row[j + 2]] += 1
            counts[3, row[j + 3]] += 1
            j += 4
        for i in range(j, end):
            counts[0, row[i]] += 1
    for c in range(n_codes):
        sums[c] += v * (counts[0, c] + counts[1, c] + counts[2, c] + counts[3, c])
    return sums


@numba.njit(cache=True, nogil=True)
def _weigh_runs(index, pixel_areas, run_row, run_c0, run_c1, run_v, n_codes):
    """Covered area per code index of the row runs, pixel by pixel: v x the
    pixel's area, or v alone if ``pixel_areas`` is empty."""
    sums = np.zeros(n_codes)
    weighted = pixel_areas.size > 0
    for k in range(run_row.size):
        r, v = run_row[k], run_v[k]
        row = index[r]
        for j in range(run_c0[k], run_c1[k]):
            sums[row[j]] += v * pixel_areas[r, j] if weighted else v
    return sums


def _window_sums(
    index: np.ndarray, n_codes: int, cov: _Coverage, pixel_areas: np.ndarray | None
) -> np.ndarray:
    """Covered area per code index in a window (coverage in window coordinates)."""
    weights = cov.cell_area
    if pixel_areas is not None:
        weights = weights * pixel_areas[cov.cell_row, cov.cell_col]
    cells = index[cov.cell_row, cov.cell_col]
    sums = np.bincount(cells, weights=weights, minlength=n_codes).astype(np.float64)
    runs = cov.run_row, cov.run_c0, cov.run_c1, cov.run_v
    if pixel_areas is None and n_codes <= _MAX_COUNTED_CODES:
        return sums + _count_runs(index, *runs, n_codes)
    areas = _NO_AREAS if pixel_areas is None else pixel_areas
    return sums + _weigh_runs(index, areas, *runs, n_codes)


def warm_up() -> None:
    """Compile (or load from the cache) the compiled loops, counting for each
    index type ``_dense_codes`` gives, as a long-lived worker would once."""
    _cut_points(*(np.zeros(1) for _ in range(4)))
    runs = np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64)
    for dtype in (np.uint8, np.uint16, np.intp):
        index = np.zeros((1, 1), dtype)
        _count_runs(index, *runs, np.ones(1), 1)
        _weigh_runs(index, np.ones((1, 1)), *runs, np.ones(1), 1)
    _running_in_rows(np.zeros(1), np.ones(1, bool), np.ones(1, bool))
    one, span = np.ones(1, np.int64), np.array([[0, 1]], np.int64)
    _count_in_windows(
        np.zeros((1, 1), np.uint8), *(one - 1, one - 1, one, one),
        span, *runs[:2], np.ones(1), span, *runs, np.ones(1), 1,
    )  # fmt: skip


def _spans(start: int, stop: int, step: int) -> Iterator[tuple[int, int]]:
    """[start, stop) cut at multiples of step, so windows follow the block grid."""
    while start < stop:
        end = min(stop, (start // step + 1) * step)
        yield start, end
        start = end


def _window_shape(block: tuple[int, int], n_cols: int, budget: int) -> tuple[int, int]:
    """Rows per band and columns per window, whole blocks when they fit the
    budget; columns are split only when one band of blocks does not fit."""
    block_h, block_w = block
    cols = n_cols
    if block_h * n_cols > budget:
        cols = max(block_w, budget // block_h // block_w * block_w)
    rows = max(1, budget // min(cols, n_cols))
    return (rows - rows % block_h if rows >= block_h else rows), cols


class _Windows:
    """The windows to read over a boundary's extent, in bands of rows.

    Iterating gives (window, its coverage or None if the boundary misses it,
    fraction of the extent done once it is counted).
    """

    def __init__(
        self,
        edges: _Edges,
        measure: _Measure,
        rows: tuple[int, int],
        cols: tuple[int, int],
        shape: tuple[int, int],
    ):
        self._edges, self._measure = edges, measure
        self.rows, self.cols = rows, cols
        self.band_rows, self._window_cols = shape
        self.count = _window_count(rows, cols, shape)

    def _col_spans(self) -> list[tuple[int, int]]:
        col_lo, col_hi = self.cols
        if self._window_cols >= col_hi - col_lo:
            return [(col_lo, col_hi)]
        return list(_spans(col_lo, col_hi, self._window_cols))

    def __iter__(self) -> Iterator[tuple[Window, _Coverage | None, float]]:
        (row_lo, row_hi), (col_lo, col_hi) = self.rows, self.cols
        total, done = (row_hi - row_lo) * (col_hi - col_lo), 0
        for r0, r1 in _spans(row_lo, row_hi, self.band_rows):
            band = _band_coverage(self._edges, r0, r1, self._measure)
            for c0, c1 in self._col_spans():
                done += (r1 - r0) * (c1 - c0)
                clipped = _clip_coverage(band, c0, c1)
                window, cov = (
                    clipped if clipped else (Window(c0, r0, c1 - c0, r1 - r0), None)
                )
                yield window, cov, done / total


def _window_count(
    rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int]
) -> int:
    """How many windows ``_Windows`` reads over rows x cols in windows of shape."""
    band_rows, window_cols = shape
    col_spans = (
        1 if window_cols >= cols[1] - cols[0] else len(list(_spans(*cols, window_cols)))
    )
    return len(list(_spans(*rows, band_rows))) * col_spans


@dataclass(frozen=True)
class _SharedWindows:
    """The window each of many boundaries is counted on and its coverage in
    that window's coordinates, as ``_clip_coverage`` gives them for one
    boundary in its one window: boundary k's cells are
    ``coverage.cell_*[cell_span[k, 0]:cell_span[k, 1]]``, its runs likewise."""

    has_window: np.ndarray
    row_off: np.ndarray
    col_off: np.ndarray
    height: np.ndarray
    width: np.ndarray
    coverage: _Coverage
    cell_span: np.ndarray
    run_span: np.ndarray

    @classmethod
    def of(cls, cov: _Coverage, group_bounds: np.ndarray, count: int) -> _SharedWindows:
        assert cov.cell_group is not None and cov.run_group is not None
        col_lo = np.floor(group_bounds[:, 0]).astype(np.int64)
        col_hi = np.ceil(group_bounds[:, 2]).astype(np.int64)
        g, rg = cov.cell_group, cov.run_group
        cells = (cov.cell_col >= col_lo[g]) & (cov.cell_col < col_hi[g])
        cells &= cov.cell_area != 0
        run_c0 = np.maximum(cov.run_c0, col_lo[rg])
        run_c1 = np.minimum(cov.run_c1, col_hi[rg])
        runs = run_c1 > run_c0
        g, cell_row, cell_col = g[cells], cov.cell_row[cells], cov.cell_col[cells]
        rg, run_row = rg[runs], cov.run_row[runs]
        run_c0, run_c1 = run_c0[runs], run_c1[runs]
        # each window: the smallest holding the boundary's cells and runs
        last = np.iinfo(np.int64).max
        row_lo, col_lo = np.full(count, last), np.full(count, last)
        row_hi, col_hi = np.full(count, -1), np.full(count, -1)
        for group, rows, lo, hi in (
            (g, cell_row, cell_col, cell_col),
            (rg, run_row, run_c0, run_c1 - 1),
        ):
            np.minimum.at(row_lo, group, rows)
            np.maximum.at(row_hi, group, rows)
            np.minimum.at(col_lo, group, lo)
            np.maximum.at(col_hi, group, hi)
        has_window = row_hi >= 0
        row_off = np.where(has_window, row_lo, 0)
        col_off = np.where(has_window, col_lo, 0)
        groups = np.arange(count)
        return cls(
            has_window=has_window,
            row_off=row_off,
            col_off=col_off,
            height=np.where(has_window, row_hi - row_lo + 1, 0),
            width=np.where(has_window, col_hi - col_lo + 1, 0),
            coverage=_Coverage(
                cell_row=cell_row - row_off[g],
                cell_col=cell_col - col_off[g],
                cell_area=cov.cell_area[cells],
                run_row=run_row - row_off[rg],
                run_c0=run_c0 - col_off[rg],
                run_c1=run_c1 - col_off[rg],
                run_v=cov.run_v[runs],
            ),
            cell_span=np.column_stack(
                [np.searchsorted(g, groups), np.searchsorted(g, groups, "right")]
            ),
            run_span=np.column_stack(
                [np.searchsorted(rg, groups), np.searchsorted(rg, groups, "right")]
            ),
        )

    def regions(
        self, band_rows: int, block_width: int, max_pixels: int
    ) -> Iterator[tuple[Window, np.ndarray]]:
        """Windows to read, each with the boundaries whose windows it holds:
        boundaries grouped by the band of rows their window starts in, side by
        side along the band while the next one starts in the same or the next
        block column and the region stays within ``max_pixels``."""
        has = np.flatnonzero(self.has_window)
        band = self.row_off[has] // band_rows
        order = has[np.lexsort((self.col_off[has], band))]
        region: list[int] = []  # row0, row1, col0, col1, band
        members: list[int] = []
        for k in order.tolist():
            r0, c0 = int(self.row_off[k]), int(self.col_off[k])
            r1, c1 = r0 + int(self.height[k]), c0 + int(self.width[k])
            if members:
                R0, R1, C0, C1, B = region
                rows, cols = max(R1, r1) - min(R0, r0), max(C1, c1) - min(C0, c0)
                if (
                    r0 // band_rows == B
                    and c0 // block_width <= (C1 - 1) // block_width + 1
                    and rows * cols <= max_pixels
                ):
                    region = [min(R0, r0), max(R1, r1), min(C0, c0), max(C1, c1), B]
                    members.append(k)
                    continue
                yield Window(C0, R0, C1 - C0, R1 - R0), np.array(members)
            region, members = [r0, r1, c0, c1, r0 // band_rows], [k]
        if members:
            R0, R1, C0, C1, _ = region
            yield Window(C0, R0, C1 - C0, R1 - R0), np.array(members)


@numba.njit(cache=True, nogil=True)
def _count_in_windows(
    block, row_off, col_off, height, width,
    cell_span, cell_row, cell_col, cell_area,
    run_span, run_row, run_c0, run_c1, run_v, n_codes,
):  # fmt: skip
    """``_window_sums`` of many windows of one uint8 block without pixel areas,
    each with its own coverage: the same sums, added in the same order."""
    sums = np.zeros((row_off.size, n_codes))
    for m in range(row_off.size):
        r, c = row_off[m], col_off[m]
        view = block[r : r + height[m], c : c + width[m]]
        cells = np.zeros(n_codes)  # as np.bincount adds the weights
        for k in range(cell_span[m, 0], cell_span[m, 1]):
            cells[view[cell_row[k], cell_col[k]]] += cell_area[k]
        a, b = run_span[m, 0], run_span[m, 1]
        runs = _count_runs(
            view, run_row[a:b], run_c0[a:b], run_c1[a:b], run_v[a:b], n_codes
        )
        for code in range(n_codes):
            sums[m, code] = cells[code] + runs[code]
    return sums


def _checked_boundaries(boundaries: list) -> np.ndarray:
    """``_checked_boundary`` of each, as an array; the checks vectorised, and
    the first boundary failing them checked again alone to raise its error."""
    geometries = np.empty(len(boundaries), object)
    geometries[:] = boundaries
    polygonal = np.array(
        [isinstance(b, shapely.Polygon | shapely.MultiPolygon) for b in boundaries],
        bool,
    )
    good = polygonal.copy()
    candidates = geometries[polygonal]
    west, south, east, north = shapely.bounds(candidates).T
    with np.errstate(invalid="ignore"):
        good[polygonal] = (
            ~shapely.is_empty(candidates)
            & shapely.is_valid(candidates)
            & (shapely.area(candidates) != 0)
            & (west >= -180) & (east <= 360) & (south >= -90) & (north <= 90)
        )  # fmt: skip
    for i in np.flatnonzero(~good).tolist():
        with _boundary_at(i):
            _checked_boundary(boundaries[i])
    return shapely.force_2d(geometries)


@contextmanager
def _boundary_at(index: int) -> Iterator[None]:
    """Marks an ``AreaError`` raised inside with the boundary's position."""
    try:
        yield
    except AreaError as error:
        error.boundary_index = index
        raise


class WindowSums:
    """Areas summed over windows, per class code and on nodata. Each window's
    sum is kept and the totals are ``math.fsum`` of them: correctly rounded,
    so the windows of a boundary measured in parts (tiles on several workers,
    see ``LandCoverRaster.row_tiles``) add up to the very floats one pass
    gives, whatever the order."""

    def __init__(self, nodata: int | None):
        self._nodata = nodata
        self.by_class_parts: dict[int, list[float]] = {}
        self.nodata_parts: list[float] = []
        self.pixels_read = 0

    def add(self, codes: list[int | None], sums: np.ndarray, pixels_read: int) -> None:
        self.pixels_read += pixels_read
        for i in np.flatnonzero(sums).tolist():
            code = codes[i]
            if code is None or code == self._nodata:
                self.nodata_parts.append(float(sums[i]))
            else:
                self.by_class_parts.setdefault(code, []).append(float(sums[i]))

    def merge(self, other: WindowSums) -> None:
        self.pixels_read += other.pixels_read
        self.nodata_parts.extend(other.nodata_parts)
        for code, parts in other.by_class_parts.items():
            self.by_class_parts.setdefault(code, []).extend(parts)

    @property
    def nodata_m2(self) -> float:
        return math.fsum(self.nodata_parts)

    def by_class(self) -> dict[int, float]:
        return {
            code: math.fsum(self.by_class_parts[code])
            for code in sorted(self.by_class_parts)
        }

    def to_json(self) -> dict:
        """Plain JSON (a Celery result): floats survive it exactly."""
        return {
            "classes": {str(c): p for c, p in self.by_class_parts.items()},
            "nodata": self.nodata_parts,
            "pixels_read": self.pixels_read,
        }

    @classmethod
    def from_json(cls, data: dict) -> WindowSums:
        sums = cls(None)
        sums.by_class_parts = {int(c): list(p) for c, p in data["classes"].items()}
        sums.nodata_parts = list(data["nodata"])
        sums.pixels_read = int(data["pixels_read"])
        return sums


# --- the raster ----------------------------------------------------------------


class LandCoverRaster:
    """A checked single-band categorical GeoTIFF, open for any number of
    boundaries (parcels share GDAL's cache of decoded blocks). Use it as a
    context manager; ``class_areas`` opens one for a single boundary."""

    def __init__(
        self,
        raster_path: str | os.PathLike[str],
        *,
        max_window_pixels: int = DEFAULT_MAX_WINDOW_PIXELS,
    ):
        path = _checked_path(raster_path)
        _check_format(path)
        self._src = _open(path)
        try:
            _check_header(self._src)
            self._setup_crs(CRS.from_wkt(self._src.crs.to_wkt()))
        except Exception:
            self._src.close()
            raise
        # paths that need 8-byte arrays per pixel read windows 16x smaller
        slow = self._pixel_areas is not None or self._src.dtypes[0] != "uint8"
        self._max_window_pixels = max(1, max_window_pixels // (16 if slow else 1))
        self._nodata = _integer_or_none(self._src.nodata)
        flags = self._src.mask_flag_enums[0]
        self._masked = self._src.nodata is None and MaskFlags.per_dataset in flags

    def _setup_crs(self, crs: CRS) -> None:
        if crs.is_bound:  # a datum shift to WGS84 attached (TOWGS84)
            crs = crs.source_crs
        if crs.is_compound:
            crs = crs.sub_crs_list[0]
        t = self._src.transform
        self._to_crs = self._from_crs = self._pixel_areas = None
        self._metre = crs.axis_info[0].unit_conversion_factor  # CRS unit, in m
        self._step = _STEP_DEG  # to densify the raster's edges, in CRS units
        if crs.is_geographic:
            if not math.isclose(self._metre, math.pi / 180):
                raise UnsupportedCrsError("Geographic rasters must be in degrees.")
            self._measure: _Measure = _GeographicMeasure(t)
            return
        if not crs.is_projected:
            raise UnsupportedCrsError(
                "The raster's CRS is not geographic or projected."
            )
        self._step = _STEP_DEG * 111_000 / self._metre
        self._to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._from_crs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        jacobian = _JacobianAreas(crs, t)
        nominal = abs(t.a * t.e) * self._metre**2
        method = crs.coordinate_operation.method_name
        if method in EQUAL_AREA_METHODS and self._agrees(jacobian, nominal):
            self._measure = _LinearMeasure(nominal, "equal_area")
        else:
            self._measure = _LinearMeasure(1.0, "jacobian")
            self._pixel_areas = jacobian

    def _agrees(self, jacobian: _JacobianAreas, nominal: float) -> bool:
        """The Jacobian gives the nominal pixel area at 25 points of the raster."""
        rows = np.linspace(0.05, 0.95, 5) * self._src.height
        cols = np.linspace(0.05, 0.95, 5) * self._src.width
        grid_r, grid_c = np.meshgrid(rows, cols)
        with np.errstate(invalid="ignore"):
            areas = jacobian.at(grid_r.ravel(), grid_c.ravel())
        return bool(np.all(np.abs(areas / nominal - 1) < 1e-8))

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> LandCoverRaster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def area_model(self) -> str:
        """How pixel areas are measured (see the module docstring): "wgs84_rows",
        "equal_area" or "jacobian"."""
        return self._measure.area_model

    def class_areas(
        self,
        boundary: shapely.Polygon | shapely.MultiPolygon,
        *,
        progress: Callable[[float], None] | None = None,
    ) -> ClassAreas:
        """Area of each class inside ``boundary``, a (Multi)Polygon in EPSG:4326."""
        rings, dense, edges = self._prepared(boundary)

        def areas() -> tuple[float, float]:  # outside the raster, and in all
            outside_m2 = self._outside_m2(dense.of_owner(0), edges.bounds)
            return outside_m2, rings.geodesic_areas_m2(1)[0]

        totals, (outside_m2, boundary_m2) = self._sum_windows(
            edges, None, progress, areas
        )
        return self.class_areas_from(
            totals, outside_m2=outside_m2, boundary_m2=boundary_m2
        )

    def row_tiles(
        self, boundary: shapely.Polygon | shapely.MultiPolygon, *, max_pixels: int
    ) -> list[tuple[int, int]]:
        """Row ranges splitting the windows ``class_areas`` reads over the
        boundary into tiles of whole bands of windows, each at most
        ``max_pixels`` pixels (or one band): ``class_area_sums`` of every
        tile, merged, are the sums one pass makes (see ``WindowSums``)."""
        _rings, _dense, edges = self._prepared(boundary)
        windows = self._windows(edges)
        (row_lo, row_hi), (col_lo, col_hi) = windows.rows, windows.cols
        band_pixels = windows.band_rows * (col_hi - col_lo)
        step = windows.band_rows * max(1, max_pixels // band_pixels)
        return list(_spans(row_lo, row_hi, step))

    def class_area_sums(
        self,
        boundary: shapely.Polygon | shapely.MultiPolygon,
        *,
        rows: tuple[int, int] | None,
        progress: Callable[[float], None] | None = None,
    ) -> WindowSums:
        """The window sums of one tile of ``row_tiles`` (of all, if None)."""
        _rings, _dense, edges = self._prepared(boundary)
        totals, _ = self._sum_windows(edges, rows, progress, lambda: None)
        return totals

    def boundary_areas_m2(
        self, boundary: shapely.Polygon | shapely.MultiPolygon
    ) -> tuple[float, float]:
        """(Area beyond the raster's extent, whole area) of the boundary."""
        rings, dense, edges = self._prepared(boundary)
        return self._outside_m2(dense.of_owner(0), edges.bounds), (
            rings.geodesic_areas_m2(1)[0]
        )

    def class_areas_from(
        self, sums: WindowSums, *, outside_m2: float, boundary_m2: float
    ) -> ClassAreas:
        return ClassAreas(
            area_m2_by_class=sums.by_class(),
            nodata_m2=sums.nodata_m2,
            outside_raster_m2=outside_m2,
            boundary_m2=boundary_m2,
            pixels_read=sums.pixels_read,
            area_model=self.area_model,
        )

    def _prepared(
        self, boundary: shapely.Geometry
    ) -> tuple[_RingSet, _RingSet, _Edges]:
        rings = _RingSet.of(np.array([_checked_boundary(boundary)]))
        dense = rings.densified()
        pixels = self._to_pixels(dense.xy)
        if not np.isfinite(pixels).all():
            raise InvalidBoundaryError("The boundary is beyond the raster CRS's area.")
        return rings, dense, _Edges.of(dense.with_xy(pixels))

    def _sum_windows(
        self,
        edges: _Edges,
        rows: tuple[int, int] | None,
        progress: Callable[[float], None] | None,
        meanwhile: Callable[[], _T],
    ) -> tuple[WindowSums, _T]:
        """Counts the windows over the boundary (those of ``rows`` only, if
        given); returns their sums and what ``meanwhile`` returned."""
        totals = WindowSums(self._nodata)

        def count(window: Window, cov: _Coverage, pixels: tuple) -> None:
            block, valid = pixels
            index, codes = _dense_codes(block, valid)
            px = self._pixel_areas.window(window) if self._pixel_areas else None
            totals.add(codes, _window_sums(index, len(codes), cov, px), block.size)

        with _gdal_env():
            result = _each_window(
                self._windows(edges, rows),
                self._read,
                count,
                progress or _ignore,
                meanwhile,
            )
        return totals, result

    def class_areas_of_each(
        self,
        boundaries: Iterable[shapely.Polygon | shapely.MultiPolygon],
        *,
        progress: Callable[[float], None] | None = None,
    ) -> list[ClassAreas]:
        """``class_areas`` of each boundary, the same numbers, measured together
        (see "Many boundaries" in the module docstring). Overlapping boundaries
        each get their whole area. ``progress`` gets the fraction of boundaries
        done. A bad boundary raises the ``AreaError`` ``class_areas`` would, with
        ``boundary_index`` set to its position."""
        geometries = _checked_boundaries(list(boundaries))
        results: list[ClassAreas | None] = [None] * len(geometries)
        done = 0

        def measured(indices: np.ndarray) -> None:
            nonlocal done
            done += len(indices)
            if progress is not None:
                progress(done / len(geometries))

        with _gdal_env():
            for batch in self._batches(geometries):
                self._measure_together(geometries, batch, results, measured)
        return results  # type: ignore[return-value]

    def _batches(self, geometries: np.ndarray) -> Iterator[np.ndarray]:
        """Indices of the boundaries in the order they lie on the raster (bands
        of rows, then columns), cut into batches whose coverage arrays stay
        small; a batch's boundaries are worked out together."""
        if geometries.size == 0:
            return
        west, south, east, north = shapely.bounds(geometries).T
        corners = np.column_stack(
            [np.r_[west, east], np.r_[south, north]]
        )  # lower left, then upper right corners
        with np.errstate(invalid="ignore"):
            pixels = self._to_pixels(corners)
            lower_left, upper_right = np.split(pixels, 2)
            col, row = (lower_left + upper_right).T / 2
            extent = np.abs(upper_right - lower_left).sum(axis=1)
            extent = np.nan_to_num(extent, nan=_BATCH_EXTENT, posinf=_BATCH_EXTENT)
            order = np.lexsort((col, np.floor(row / self._shared_band_rows())))
        start, used = 0, 0.0
        for k, i in enumerate(order.tolist()):
            used += extent[i]
            if k + 1 - start == _BATCH_SIZE or used >= _BATCH_EXTENT:
                yield order[start : k + 1]
                start, used = k + 1, 0.0
        if start < order.size:
            yield order[start:]

    def _shared_band_rows(self) -> int:
        """Rows of the bands shared reads are grouped in: whole blocks, at least
        ``_SHARED_MIN_BAND_ROWS`` (a striped file's blocks may be one row)."""
        block_h = self._src.block_shapes[0][0]
        return block_h * max(1, -(-_SHARED_MIN_BAND_ROWS // block_h))

    def _measure_together(
        self,
        geometries: np.ndarray,
        batch: np.ndarray,
        results: list[ClassAreas | None],
        measured: Callable[[np.ndarray], None],
    ) -> None:
        """Measures a batch of boundaries into ``results``: the small ones whose
        pixels lie wholly on the raster together, the others one by one."""
        if batch.size == 0:
            return
        rings = _RingSet.of(geometries[batch])
        dense = rings.densified()
        pixels = self._to_pixels(dense.xy)
        finite = np.ones(batch.size, bool)
        finite[dense.point_owner()[~np.isfinite(pixels).all(axis=1)]] = False
        if not finite.all():  # beyond the raster CRS: alone, to raise as it does
            self._measure_alone(geometries, batch[~finite], results, measured)
            self._measure_together(geometries, batch[finite], results, measured)
            return
        edges = _Edges.of(dense.with_xy(pixels))
        shared = self._shareable(edges.group_bounds)
        self._measure_alone(geometries, batch[~shared], results, measured)
        if not shared.any():
            return
        mine = shared[edges.group]
        cov = _pixel_coverage(
            edges.x0[mine], edges.y0[mine], edges.x1[mine], edges.y1[mine],
            edges.group[mine], self._measure,
        )  # fmt: skip
        windows = _SharedWindows.of(cov, edges.group_bounds, batch.size)
        boundary_m2 = rings.geodesic_areas_m2(batch.size)

        def result(k: int, totals: WindowSums) -> None:
            results[batch[k]] = ClassAreas(
                area_m2_by_class=totals.by_class(),
                nodata_m2=totals.nodata_m2,
                outside_raster_m2=0.0,  # shared ones lie wholly on the raster
                boundary_m2=boundary_m2[k],
                pixels_read=totals.pixels_read,
                area_model=self.area_model,
            )

        missed = np.flatnonzero(shared & ~windows.has_window)
        for k in missed.tolist():  # the boundary covers no pixel measurably
            result(k, WindowSums(self._nodata))
        measured(missed)
        for region, members in windows.regions(
            self._shared_band_rows(),
            self._src.block_shapes[0][1],
            self._max_window_pixels,
        ):
            pixels_of_region = self._read(region)
            for k, totals in zip(
                members.tolist(),
                self._count_shared(region, pixels_of_region, windows, members),
                strict=True,
            ):
                result(k, totals)
            measured(members)

    def _shareable(self, group_bounds: np.ndarray) -> np.ndarray:
        """Which boundaries (by their pixel bounds) are measured with others:
        those wholly on the raster that ``class_areas`` reads in one window
        and no larger than ``_SHARED_MAX_SIDE`` pixels a side."""
        height, width = self._src.height, self._src.width
        block = self._src.block_shapes[0]
        shareable = np.zeros(len(group_bounds), bool)
        for k, (x_min, y_min, x_max, y_max) in enumerate(group_bounds.tolist()):
            if x_min < 0 or y_min < 0 or x_max > width or y_max > height:
                continue  # class_areas measures the part beyond the raster
            rows = math.floor(y_min), math.ceil(y_max)
            cols = math.floor(x_min), math.ceil(x_max)
            if max(rows[1] - rows[0], cols[1] - cols[0]) > _SHARED_MAX_SIDE:
                continue
            shape = _window_shape(block, cols[1] - cols[0], self._max_window_pixels)
            shareable[k] = _window_count(rows, cols, shape) == 1
        return shareable

    def _measure_alone(
        self,
        geometries: np.ndarray,
        indices: np.ndarray,
        results: list[ClassAreas | None],
        measured: Callable[[np.ndarray], None],
    ) -> None:
        for i in indices.tolist():
            with _boundary_at(i):
                results[i] = self.class_areas(geometries[i])
            measured(np.array([i]))

    def _count_shared(
        self,
        region: Window,
        pixels: tuple[np.ndarray, np.ndarray | None],
        windows: _SharedWindows,
        members: np.ndarray,
    ) -> list[WindowSums]:
        """Each member's totals over its own window inside the region read: the
        sums ``class_areas`` makes over that window, in the same order."""
        block, valid = pixels
        row_off = windows.row_off[members] - int(region.row_off)
        col_off = windows.col_off[members] - int(region.col_off)
        height, width = windows.height[members], windows.width[members]
        cov = windows.coverage
        cells, runs = windows.cell_span[members], windows.run_span[members]
        all_totals = [WindowSums(self._nodata) for _ in range(members.size)]
        if block.dtype == np.uint8 and valid is None and self._pixel_areas is None:
            sums = _count_in_windows(
                block, row_off, col_off, height, width,
                cells, cov.cell_row, cov.cell_col, cov.cell_area,
                runs, cov.run_row, cov.run_c0, cov.run_c1, cov.run_v,
                len(_UINT8_CODES),
            )  # fmt: skip
            for m, totals in enumerate(all_totals):
                totals.add(_UINT8_CODES, sums[m], int(height[m] * width[m]))
            return all_totals
        for m, totals in enumerate(all_totals):  # as class_areas counts a window
            rows = slice(row_off[m], row_off[m] + height[m])
            cols = slice(col_off[m], col_off[m] + width[m])
            index, codes = _dense_codes(
                block[rows, cols], None if valid is None else valid[rows, cols]
            )
            own = Window(
                int(col_off[m]) + int(region.col_off),
                int(row_off[m]) + int(region.row_off),
                int(width[m]),
                int(height[m]),
            )
            px = self._pixel_areas.window(own) if self._pixel_areas else None
            (c0, c1), (r0, r1) = cells[m], runs[m]
            window_cov = _Coverage(
                cov.cell_row[c0:c1], cov.cell_col[c0:c1], cov.cell_area[c0:c1],
                cov.run_row[r0:r1], cov.run_c0[r0:r1], cov.run_c1[r0:r1],
                cov.run_v[r0:r1],
            )  # fmt: skip
            totals.add(
                codes, _window_sums(index, len(codes), window_cov, px), index.size
            )
        return all_totals

    def _to_pixels(self, lonlat: np.ndarray) -> np.ndarray:
        """(n, 2) lon/lat as (column, row) pixel coordinates; not finite where
        the raster's CRS cannot map a point."""
        xy = lonlat
        if self._to_crs is not None:
            xy = np.column_stack(self._to_crs.transform(lonlat[:, 0], lonlat[:, 1]))
        t = self._src.transform
        return (xy - (t.c, t.f)) / (t.a, t.e)

    def _outside_m2(
        self, rings: _Rings, pixel_bounds: tuple[float, float, float, float]
    ) -> float:
        """Area of the part of the boundary beyond the raster's extent."""
        x_min, y_min, x_max, y_max = pixel_bounds
        width, height = self._src.width, self._src.height
        if x_min >= 0 and y_min >= 0 and x_max <= width and y_max <= height:
            return 0.0
        # the raster's extent near the boundary, densified, in lon/lat
        near = shapely.box(x_min - 1, y_min - 1, x_max + 1, y_max + 1)
        footprint = shapely.box(0, 0, width, height).intersection(near)
        if footprint.is_empty:
            raise NoOverlapError("The boundary lies entirely outside the raster.")
        step = self._step / abs(self._src.transform.a)
        footprint = self._to_lonlat(shapely.segmentize(footprint, step))
        lonlat = _polygons(rings)
        outside = lonlat.difference(footprint)
        if outside.area >= lonlat.area * (1 - 1e-12):
            raise NoOverlapError("The boundary lies entirely outside the raster.")
        return _geodesic_area_m2(_rings(outside)) if not outside.is_empty else 0.0

    def _to_lonlat(self, pixels: shapely.Geometry) -> shapely.Geometry:
        t = self._src.transform
        geometry = shapely.transform(pixels, lambda xy: xy * (t.a, t.e) + (t.c, t.f))
        if self._from_crs is None:
            return geometry
        return shapely.transform(geometry, _xy_function(self._from_crs))

    def _windows(self, edges: _Edges, tile: tuple[int, int] | None = None) -> _Windows:
        """The windows over the boundary's extent; only those of the rows of
        ``tile`` (from ``row_tiles``, so it starts on a band) if given."""
        src = self._src
        x_min, y_min, x_max, y_max = edges.bounds
        rows = max(0, math.floor(y_min)), min(src.height, math.ceil(y_max))
        cols = max(0, math.floor(x_min)), min(src.width, math.ceil(x_max))
        if rows[0] >= rows[1] or cols[0] >= cols[1]:
            raise NoOverlapError("The boundary lies entirely outside the raster.")
        shape = _window_shape(
            src.block_shapes[0], cols[1] - cols[0], self._max_window_pixels
        )
        if tile is not None:
            on_band = tile[0] == rows[0] or tile[0] % shape[0] == 0
            if not on_band or not rows[0] <= tile[0] < rows[1]:
                raise ValueError(f"rows {tile} are not a tile of this boundary")
            rows = tile[0], min(tile[1], rows[1])
        return _Windows(edges, self._measure, rows, cols, shape)

    def _read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            block = self._src.read(1, window=window)
            valid = self._src.read_masks(1, window=window) if self._masked else None
        except RasterioError as exc:
            raise UnreadableError("The raster could not be read.") from exc
        return block, None if valid is None else valid != 0


def _each_window(
    windows: _Windows,
    read: Callable[[Window], tuple[np.ndarray, np.ndarray | None]],
    count: Callable[[Window, _Coverage, tuple[np.ndarray, np.ndarray | None]], None],
    done: Callable[[float], None],
    meanwhile: Callable[[], _T],
) -> _T:
    """Reads and counts the windows the boundary covers, in order; ``done`` gets
    the fraction of the extent done after each window. Returns what
    ``meanwhile`` returns, which runs while the first window is read.

    With more than one window, a thread reads (GDAL inflates without the GIL)
    the next window while the calling thread works out the coverage of the one
    after and counts the current one, the compiled loops without the GIL too.
    So at most two windows are held: one being counted, one being read.
    """
    items = iter(windows)
    if windows.count <= 1:
        result = meanwhile()
        for window, cov, fraction in items:
            if cov is not None:
                count(window, cov, read(window))
            done(fraction)
        return result
    with ThreadPoolExecutor(max_workers=1) as reader:

        def submit() -> tuple | None:
            """The next window, its coverage and fraction, and its read queued."""
            item = next(items, None)
            if item is None:
                return None
            window, cov, _ = item
            return *item, reader.submit(read, window) if cov is not None else None

        pending = submit()
        result = meanwhile()
        while pending is not None:
            following = submit()
            window, cov, fraction, future = pending
            pending = None  # no reference to a counted window's pixels is kept
            if future is not None:
                pixels, future = future.result(), None
                count(window, cov, pixels)
                pixels = None
            done(fraction)
            pending = following
    return result


def _ignore(fraction: float) -> None:
    pass


def _integer_or_none(value: float | None) -> int | None:
    if value is None or not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def _xy_function(transformer: Transformer) -> Callable[[np.ndarray], np.ndarray]:
    """The transformer as a function of (n, 2) coordinates, for shapely.transform;
    infinite results mean points beyond what the projection can map."""

    def apply(xy: np.ndarray) -> np.ndarray:
        out = np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        if not np.isfinite(out).all():
            raise InvalidBoundaryError("The boundary is beyond the raster CRS's area.")
        return out

    return apply


def _gdal_env() -> rasterio.Env:
    """A bounded GDAL block cache, so memory does not grow with the raster.

    rasterio hands an integer GDAL_CACHEMAX to GDAL as bytes (64 would be a
    64-byte cache, re-inflating tiles on every read).
    """
    return rasterio.Env(
        GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"
    )


def class_areas(
    raster_path: str | os.PathLike[str],
    boundary: shapely.Polygon | shapely.MultiPolygon,
    *,
    progress: Callable[[float], None] | None = None,
    max_window_pixels: int = DEFAULT_MAX_WINDOW_PIXELS,
) -> ClassAreas:
    """Area (m2) of each class of a land-cover raster inside ``boundary``.

    ``boundary`` is a (Multi)Polygon in EPSG:4326 lon/lat. ``progress`` gets
    the fraction done after each window, ending with 1.0. Bad input raises an
    ``AreaError`` subclass with a stable ``code``.
    """
    with LandCoverRaster(raster_path, max_window_pixels=max_window_pixels) as raster:
        return raster.class_areas(boundary, progress=progress)
