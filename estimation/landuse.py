"""Areas per class of land-use polygons (Third National Land Survey style: a
polygon layer with a class-code field, up to a couple of million patches)
inside a boundary.

Files are vetted by ``registry.boundaries.open_polygon_source`` (the checks of
boundary uploads) and read in bulk through pyogrio: Arrow batches of
``CHUNK_FEATURES`` patches, only those in the boundary's bounding box, the
next batch read while two others are measured, each on its own thread (the
compiled loops release the GIL; GEOS work is taken one batch at a time), so
memory stays bounded.

Each batch is measured as arrays (``estimation.survey_geometry``): the WKB is
parsed in a compiled loop, a grid of the boundary in the layer's coordinates
places each patch inside, outside or near the edge, and the patches wholly
inside that are certainly valid are moved to lon/lat (cubic interpolation
between nodes PROJ placed) and measured on the WGS84 ellipsoid in one
compiled loop (``common.geodesy.polygon_areas_m2``). The few others go to
GEOS, vectorised: invalid patches (self-intersections are common in survey
exports) are repaired with ``make_valid`` and counted, never dropped; a
prepared boundary finds those wholly inside; the rest are clipped against the
boundary cut into small pieces (an STRtree finds the pieces). The per-class
sums are integers of mm^2, so the order of the patches cannot change a
result. ``progress`` is called after each batch; whatever it raises (a
cancelled run) stops the measurement there.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyproj
import shapely
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from common import geodesy
from estimation import survey_geometry as survey
from registry.boundaries import PolygonSource, open_polygon_source

MAX_FEATURES = 2_000_000
LISTED_CODES = 200
# Patches per Arrow batch. Larger batches are no faster, and glibc keeps the
# freed space of GDAL's bigger batches: at 65,536, reading 2 million patches
# held 450 MB more.
CHUNK_FEATURES = 16_384
# Batches measured at once, each on its own thread (the compiled loops and
# GEOS release the GIL), while another thread reads the next.
MEASURING_THREADS = 2
# Lon/lat CRSs whose coordinates are taken as WGS84 lon/lat as they are
# (CGCS2000 and WGS84 agree to a few centimetres; PROJ applies no shift).
LONLAT_SRIDS = (4326, 4490)
# How far (metres; about as far in degrees for lon/lat layers) a patch must
# keep from the boundary to count as inside without GEOS: far more than a
# patch edge up to MAX_QUICK_EXTENT long bends between the layer's plane
# and lon/lat.
MARGIN_M = 1.0
MARGIN_DEGREES = 1e-5
MAX_QUICK_EXTENT_M = 5_000.0
MAX_QUICK_EXTENT_DEGREES = 0.05
# Patch vertices go to lon/lat by interpolation between nodes this far apart
# that PROJ placed (``survey_geometry.InterpolatedTransform``), at most this
# many nodes along the boundary's extent.
NODE_SPACING_M = 2_000.0
MAX_NODES_ALONG = 1_000
# The boundary is cut into pieces of at most this many vertices for clipping.
PIECE_VERTICES = 256
# Boundary edges are densified to this (degrees) before going to the layer's
# plane, so their pieces there stay within millimetres of the true edge.
DENSIFY_DEGREES = 0.0005
POLYGON_TYPE = int(shapely.GeometryType.POLYGON)
COLLECTION_TYPES = [
    int(shapely.GeometryType.MULTIPOLYGON),
    int(shapely.GeometryType.MULTILINESTRING),
    int(shapely.GeometryType.MULTIPOINT),
    int(shapely.GeometryType.GEOMETRYCOLLECTION),
]


class LandUseError(Exception):
    """A land-use file that cannot be measured; ``code`` names the problem."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LandUseAreas:
    """What ``class_areas`` measured: whole square millimetres per class code,
    so the parts of a layer measured apart (``fid_ranges``) add up exactly."""

    square_mm_by_code: dict[str, int]
    repaired: int  # invalid patches repaired with make_valid, then measured
    features: int  # patches read (those in the boundary's bounding box)

    @property
    def area_m2_by_code(self) -> dict[str, float]:
        return {
            code: square_mm / 1e6
            for code, square_mm in self.square_mm_by_code.items()
            if square_mm
        }

    @classmethod
    def merged(cls, parts: Iterable[LandUseAreas]) -> LandUseAreas:
        square_mm: dict[str, int] = {}
        repaired = features = 0
        for part in parts:
            for code, value in part.square_mm_by_code.items():
                square_mm[code] = square_mm.get(code, 0) + value
            repaired += part.repaired
            features += part.features
        return cls(dict(sorted(square_mm.items())), repaired, features)

    def to_json(self) -> dict:
        return {
            "square_mm": self.square_mm_by_code,
            "repaired": self.repaired,
            "features": self.features,
        }

    @classmethod
    def from_json(cls, data: dict) -> LandUseAreas:
        return cls(
            {str(code): int(v) for code, v in data["square_mm"].items()},
            int(data["repaired"]),
            int(data["features"]),
        )


def _code(value) -> str:
    return str(value).strip() if value is not None else ""


def second_level_code(code: str) -> str:
    """The survey's second-level class of a code: "0201K" (an orchard with the
    survey's K suffix) is 0201; codes that are not four digits stay as they
    are."""
    stem = code.strip().rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return stem if len(stem) == 4 and stem.isdigit() else code.strip()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _info(source: PolygonSource) -> dict:
    return pyogrio.read_info(
        source.path,
        layer=source.layer,
        force_feature_count=True,
        force_total_bounds=True,
    )


def describe(path: Path, *, class_field: str) -> dict:
    """What an upload holds: CRS, feature count, the class codes it uses. Refuses
    a file without polygons or without ``class_field`` (ValidationError). Reads
    the count from the layer's header and the codes with one SELECT DISTINCT,
    not feature by feature."""
    with open_polygon_source(Path(path)) as source:
        info = _info(source)
        fields = [str(field) for field in info["fields"]]
        if class_field not in fields:
            raise ValidationError(
                {
                    "class_field": _(
                        "The layer has no field “%(field)s”. Its fields are: "
                        "%(fields)s."
                    )
                    % {"field": class_field, "fields": ", ".join(fields)}
                },
                code="class_field",
            )
        if info["features"] > MAX_FEATURES:
            raise ValidationError(
                _("The layer has more than %(limit)s polygons.")
                % {"limit": MAX_FEATURES},
                code="too_large",
            )
        _meta, _fids, _geometry, (values,) = pyogrio.raw.read(
            source.path,
            sql=f"SELECT DISTINCT {_quoted(class_field)} FROM {_quoted(source.layer)}",
            read_geometry=False,
        )
        codes = sorted({_code(value) for value in values})
        return {
            "crs": f"EPSG:{source.srid}",
            "srid": source.srid,
            "features": int(info["features"]),
            "codes": codes[:LISTED_CODES],
            "extent": [float(value) for value in info["total_bounds"]],
        }


def class_areas(
    path: Path,
    boundary: shapely.Geometry,
    *,
    class_field: str,
    progress: Callable[[float], None] | None = None,
    chunk_features: int | None = None,
    fids: tuple[int, int] | None = None,
) -> LandUseAreas:
    """Square metres of each class code inside ``boundary`` (lon/lat), with the
    count of repaired patches (see the module docstring); of the patches whose
    feature id lies in [``fids[0]``, ``fids[1]``) only, if given."""
    with open_polygon_source(Path(path)) as source:
        info = _info(source)
        if class_field not in [str(field) for field in info["fields"]]:
            raise LandUseError("class_field", f"no field {class_field}")
        measure = _Measure(boundary, source.srid)
        total = max(1, int(info["features"]) if fids is None else fids[1] - fids[0])
        with pyogrio.raw.open_arrow(
            source.path,
            layer=source.layer,
            columns=[class_field],
            bbox=measure.window,
            where=None if fids is None else _fid_filter(info, fids),
            batch_size=chunk_features or CHUNK_FEATURES,
            use_pyarrow=True,
        ) as (meta, reader):
            geometry_column = meta["geometry_name"] or "wkb_geometry"
            with (
                ThreadPoolExecutor(max_workers=1) as prefetch,
                ThreadPoolExecutor(max_workers=MEASURING_THREADS) as measuring,
            ):
                pending = prefetch.submit(_next_batch, reader)
                in_flight: deque = deque()
                while (batch := pending.result()) is not None or in_flight:
                    if batch is not None:
                        pending = prefetch.submit(_next_batch, reader)
                        in_flight.append(
                            measuring.submit(
                                measure.batch,
                                batch.column(geometry_column),
                                batch.column(class_field),
                            )
                        )
                        batch = None
                        if len(in_flight) < MEASURING_THREADS:
                            continue
                    in_flight.popleft().result()
                    if progress:
                        progress(min(1.0, measure.features / total))
    if progress:
        progress(1.0)
    return measure.result()


def fid_ranges(path: Path, *, max_features: int) -> list[tuple[int, int]]:
    """Feature-id ranges [first, past the last) cutting the layer into parts of
    at most ``max_features`` ids, for ``class_areas(fids=...)`` on several
    workers; their results, ``LandUseAreas.merged``, are one pass's."""
    with open_polygon_source(Path(path)) as source:
        info = _info(source)
        if info["fid_column"]:  # a GeoPackage: ids need not start at 1 or be dense
            _meta, _fids, _geometry, (lows, highs) = pyogrio.raw.read(
                source.path,
                sql=(
                    f"SELECT MIN({_quoted(info['fid_column'])}), "
                    f"MAX({_quoted(info['fid_column'])}) FROM {_quoted(source.layer)}"
                ),
                read_geometry=False,
            )
            if lows[0] is None:
                return [(0, 1)]
            first, last = int(lows[0]), int(highs[0])
        else:  # a Shapefile's ids are its record numbers from 0
            first, last = 0, max(0, int(info["features"]) - 1)
    step = max(1, max_features)
    return [(lo, min(lo + step, last + 1)) for lo in range(first, last + 1, step)]


def _fid_filter(info: dict, fids: tuple[int, int]) -> str:
    column = _quoted(info["fid_column"]) if info["fid_column"] else "FID"
    return f"{column} >= {int(fids[0])} AND {column} < {int(fids[1])}"


def _next_batch(reader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class _Measure:
    """The running sums of one measurement, fed batch by batch."""

    def __init__(self, boundary: shapely.Geometry, srid: int):
        self.boundary = boundary
        shapely.prepare(boundary)
        self.codes: dict[str, int] = {}
        self.square_mm: list[int] = []
        self.repaired = 0
        self.features = 0
        self._pieces: tuple[np.ndarray, shapely.STRtree] | None = None
        self._lock = threading.Lock()
        self._geos_lock = threading.Lock()
        if srid in LONLAT_SRIDS:
            self.to_lonlat = None
            plane, margin = boundary, MARGIN_DEGREES
            self.quick_extent = MAX_QUICK_EXTENT_DEGREES
        else:
            to_plane = _transformer(4326, srid)
            dense = shapely.segmentize(boundary, DENSIFY_DEGREES)
            plane = shapely.transform(dense, lambda xy: _moved(to_plane, xy))
            margin = MARGIN_M
            self.quick_extent = MAX_QUICK_EXTENT_M
        rings = shapely.get_rings(shapely.get_parts(plane))
        ring_xy = shapely.get_coordinates(rings)
        ring_offsets = np.r_[0, np.cumsum(shapely.get_num_coordinates(rings))]
        self.grid = survey.BoundaryGrid(
            ring_xy[:, 0], ring_xy[:, 1], ring_offsets, margin=margin
        )
        xmin, ymin, xmax, ymax = plane.bounds
        self.window = (xmin - margin, ymin - margin, xmax + margin, ymax + margin)
        if srid not in LONLAT_SRIDS:
            extent = max(xmax - xmin, ymax - ymin)
            self.to_lonlat = survey.InterpolatedTransform(
                _transformer(srid, 4326).transform,
                self.window,
                spacing=max(NODE_SPACING_M, extent / MAX_NODES_ALONG),
            )

    def result(self) -> LandUseAreas:
        return LandUseAreas(
            square_mm_by_code={
                code: self.square_mm[index]
                for code, index in sorted(self.codes.items())
                if self.square_mm[index]
            },
            repaired=self.repaired,
            features=self.features,
        )

    def batch(self, geometry: pa.Array, codes: pa.Array) -> None:
        """Measure one batch into the sums; safe on several threads at once
        (the compiled loops and GEOS run without the GIL)."""
        with self._lock:
            self.features += len(geometry)
            classes = self._classes(codes)
        features = survey.parse_wkb(*_wkb_buffers(geometry))
        placed = self.grid.place(features.bounds)
        width = features.bounds[:, 2] - features.bounds[:, 0]
        height = features.bounds[:, 3] - features.bounds[:, 1]
        large = np.maximum(width, height) > self.quick_extent
        placed[(placed == survey.INSIDE) & large] = survey.UNDECIDED
        polygonal = features.kind == survey.POLYGONAL
        quick = survey.certainly_valid(features, polygonal & (placed == survey.INSIDE))
        sums = np.zeros(len(self.codes), dtype=np.int64)
        self._measure_quick(survey.select(features, quick), classes[quick], sums)
        others = (features.kind == survey.OTHER) | (
            polygonal & (placed != survey.OUTSIDE) & ~quick
        )
        if others.any():
            chosen = pa.array(others)
            self._measure_exact(geometry.filter(chosen), classes[others], sums)
        with self._lock:
            for index, value in enumerate(sums.tolist()):
                self.square_mm[index] += value

    def _classes(self, codes: pa.Array) -> np.ndarray:
        """The class index of each feature's code (codes are few: each distinct
        value is read and normalised once per batch)."""
        if pa.types.is_null(codes.type):  # a column that is empty throughout
            return np.full(len(codes), self._class_of(""), dtype=np.int64)
        if not pa.types.is_dictionary(codes.type):
            codes = pc.dictionary_encode(codes)
        values = [*codes.dictionary.to_pylist(), None]
        lookup = np.array([self._class_of(_code(value)) for value in values])
        missing = pa.scalar(len(values) - 1, codes.indices.type)
        indices = pc.fill_null(codes.indices, missing).to_numpy(zero_copy_only=False)
        return lookup[indices].astype(np.int64)

    def _class_of(self, code: str) -> int:
        if code not in self.codes:
            self.codes[code] = len(self.codes)
            self.square_mm.append(0)
        return self.codes[code]

    def _measure_quick(self, features, classes, sums) -> None:
        """Patches wholly inside and valid: moved to lon/lat, measured, summed."""
        lon, lat = self._lonlat(features.x, features.y)
        areas = geodesy.polygon_areas_m2(
            lon, lat, features.ring_offsets, features.polygon_offsets
        )
        survey.add_square_millimetres(
            areas, classes[survey.polygon_features(features)], sums
        )

    def _measure_exact(self, geometry: pa.Array, classes, sums) -> None:
        """The other patches, through GEOS (see the module docstring)."""
        wkb = np.asarray(geometry.to_numpy(zero_copy_only=False), dtype=object)
        # One thread at a time: GEOS builds a prepared geometry's and an
        # STRtree's indexes on first use, which is not safe to share.
        with self._geos_lock:
            try:
                shapes = shapely.transform(shapely.from_wkb(wkb), self._lonlat_xy)
                broken = ~shapely.is_valid(shapes) & ~shapely.is_missing(shapes)
                shapes[broken] = shapely.make_valid(shapes[broken])
                meets = shapely.intersects(self.boundary, shapes)
                whole = meets & shapely.contains_properly(self.boundary, shapes)
                cut = meets & ~whole
                parts = [_polygons(shapes[whole], classes[whole])]
                if cut.any():
                    pieces, tree = self._boundary_pieces()
                    shape_index, piece_index = tree.query(
                        shapes[cut], predicate="intersects"
                    )
                    clipped = shapely.intersection(
                        shapes[cut][shape_index], pieces[piece_index]
                    )
                    parts.append(_polygons(clipped, classes[cut][shape_index]))
            except (
                shapely.errors.GEOSException,
                NotImplementedError,
            ):  # damaged, curved
                raise LandUseError(
                    "unreadable_polygon", "a polygon is unreadable"
                ) from None
        with self._lock:
            self.repaired += int(np.count_nonzero(broken & meets))
        for polygons, owners in parts:
            areas = geodesy.polygon_array_areas_m2(polygons)
            survey.add_square_millimetres(areas, owners, sums)

    def _boundary_pieces(self) -> tuple[np.ndarray, shapely.STRtree]:
        """The boundary cut into pieces of at most PIECE_VERTICES vertices, so
        that clipping a patch costs what the pieces near it cost. Pieces do not
        overlap, so the areas of a patch's clipped parts add up."""
        if self._pieces is None:  # under _geos_lock
            pieces = np.array(_split(self.boundary), dtype=object)
            self._pieces = pieces, shapely.STRtree(pieces)
        return self._pieces

    def _lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.to_lonlat is None:
            return x, y
        return self.to_lonlat(x, y)

    def _lonlat_xy(self, xy: np.ndarray) -> np.ndarray:
        lon, lat = self._lonlat(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])


@functools.cache
def _transformer(source: int, target: int) -> pyproj.Transformer:
    """Built once per process: building one reads PROJ's database (~70 ms)."""
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _moved(transformer: pyproj.Transformer, xy: np.ndarray) -> np.ndarray:
    return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))


def _wkb_buffers(geometry: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrow's binary layout as numpy views: bytes, offsets, null mask."""
    _validity, offsets, data = geometry.buffers()
    width = np.int64 if pa.types.is_large_binary(geometry.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width)[
        geometry.offset : geometry.offset + len(geometry) + 1
    ]
    data = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(0, np.uint8)
    null = geometry.is_null().to_numpy(zero_copy_only=False)
    return data, offsets, null


def _polygons(shapes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygons inside ``shapes`` (through multi-parts and collections),
    each with its shape's owner; lines and points have no area."""
    while len(shapes) and np.isin(shapely.get_type_id(shapes), COLLECTION_TYPES).any():
        shapes, index = shapely.get_parts(shapes, return_index=True)
        owners = owners[index]
    polygons = shapely.get_type_id(shapes) == POLYGON_TYPE
    polygons &= ~shapely.is_empty(shapes)
    return shapes[polygons], owners[polygons]


def _split(shape: shapely.Geometry, depth: int = 0) -> list[shapely.Geometry]:
    """``shape`` halved across its longer side until each piece is small."""
    if shapely.get_num_coordinates(shape) <= PIECE_VERTICES or depth >= 16:
        return [] if shape.is_empty else [shape]
    xmin, ymin, xmax, ymax = shape.bounds
    if xmax - xmin >= ymax - ymin:
        middle = (xmin + xmax) / 2
        halves = (
            shapely.box(xmin - 1, ymin - 1, middle, ymax + 1),
            shapely.box(middle, ymin - 1, xmax + 1, ymax + 1),
        )
    else:
        middle = (ymin + ymax) / 2
        halves = (
            shapely.box(xmin - 1, ymin - 1, xmax + 1, middle),
            shapely.box(xmin - 1, middle, xmax + 1, ymax + 1),
        )
    pieces = []
    for half in halves:
        part = shapely.intersection(shape, half)
        polygonal, _owners = _polygons(np.array([part]), np.zeros(1, dtype=np.int64))
        if len(polygonal):
            pieces += _split(shapely.multipolygons(polygonal), depth + 1)
    return pieces
