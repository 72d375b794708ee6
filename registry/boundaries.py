"""Project boundaries: uploaded files or drawn GeoJSON -> one validated MultiPolygon.

A project's boundary decides which forest its carbon credits come from, so it must
be unambiguous. Every input (form upload, REST API, analyst command line, admin map)
ends as a ``Boundary``: a GEOS MultiPolygon in EPSG:4326 with lon/lat axis order,
the CRS the input was in, and its area on the WGS84 ellipsoid.

Formats are picked by file extension and must be confirmed by the first bytes:
GeoJSON (.geojson, .json), KML (.kml), a zipped ESRI Shapefile (.zip) and
GeoPackage (.gpkg, one spatial layer, or one polygon layer among others). The CRS
comes from the file: a GeoJSON ``crs`` member, the Shapefile's .prj, the GeoPackage
layer; KML is always WGS 84. The user may declare the CRS when the file does not
say it (GeoJSON without ``crs`` means lon/lat, as RFC 7946 says, unless its numbers
cannot be degrees); a declaration that contradicts the file is refused rather than
guessed between. Only WGS 84, CGCS2000 and its Gauss-Kruger zones are accepted.

Geometry rules: polygons only; the polygons of all features are dissolved into one
MultiPolygon; invalid rings are refused with GEOS's reason and never repaired (a
repaired boundary is not the one that was surveyed); Z and M values are dropped;
the result must lie within China and enclose a measurable area.

Uploads are untrusted, and GDAL 3.6 cannot stop a spatial reference definition
from reading files or URLs. So nothing is kept: files live in a private temporary
directory under server-chosen names; ZIP archives are vetted entry by entry in
Python before anything is extracted, and the .prj is read by pyproj, not GDAL;
GeoPackage CRS definitions must be WKT; GeoJSON is parsed in Python and GDAL only
sees bare ``type``/``coordinates`` objects (its reader would follow ``crs`` links).
GDAL's SpatialReference is only ever built from an integer EPSG code.
"""

import functools
import json
import re
import shutil
import sqlite3
import stat
import tempfile
import zipfile
import zlib
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pyogrio
import pyproj
import shapely
from django.conf import settings
from django.contrib.gis.gdal import DataSource, OGRGeometry
from django.contrib.gis.gdal.error import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry, MultiPolygon
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from common import geodesy, quantities

ACCEPTED_SRIDS = frozenset({4326, 4490, *range(4491, 4555)})
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # settings.REGISTRY_BOUNDARY_MAX_BYTES overrides
MAX_VERTICES = 200_000
CHINA_EXTENT = (73.4, 18.1, 135.1, 53.6)  # lon/lat: west, south, east, north

MAX_ZIP_ENTRIES = 20
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024  # all entries together, so each one too
MAX_ZIP_RATIO = 100
ZIP_RATIO_FROM_BYTES = 1024 * 1024  # small blank .dbf columns compress beyond 100x
NESTED_ARCHIVES = (".zip", ".kmz", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar")
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf")
MAX_PRJ_BYTES = 64 * 1024  # a .prj is one line of WKT

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".kml": "KML",
    ".zip": "Shapefile",
    ".gpkg": "GeoPackage",
}
SHAPE_MAGIC = b"\x00\x00\x27\x0a"
GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
_WKT = re.compile(
    r"\s*(PROJCS|GEOGCS|GEOCCS|COMPD_CS|PROJCRS|GEOGCRS|GEODCRS|BOUNDCRS|COMPOUNDCRS)\[",
    re.IGNORECASE,
)
_EPSG_URN = re.compile(
    r"(urn:ogc:def:crs:EPSG:[\d.]*:|EPSG:|https?://www\.opengis\.net/def/crs/EPSG/.*/)"
    r"(?P<code>\d+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Boundary:
    geometry: MultiPolygon  # SRID 4326, lon/lat
    source_srid: int
    area_ha: Decimal  # WGS84 ellipsoid, to 0.0001 ha
    feature_count: int


@dataclass(frozen=True)
class NamedBoundary:
    """One feature of a file read feature by feature."""

    name: str  # its name field's value, or its number from 1 in the file
    boundary: Boundary


@dataclass(frozen=True)
class _Features:
    """A file's features as read: the polygons of each, the value of the
    requested name field of each (None without one), the file's CRS."""

    polygons: list[list[GEOSGeometry]]
    names: list[object]
    srid: int

    def dissolved(self) -> Boundary:
        polygons = [polygon for feature in self.polygons for polygon in feature]
        return _build(polygons, len(self.polygons), self.srid)


@functools.cache
def _crs_labels() -> tuple[tuple[int, str], ...]:
    return tuple(
        (srid, f"EPSG:{srid} · {pyproj.CRS.from_epsg(srid).name}")
        for srid in sorted(ACCEPTED_SRIDS)
    )


def crs_choices() -> list[tuple[int, str]]:
    """(srid, label) for every accepted CRS, for a form's select."""
    return list(_crs_labels())


def read_boundary_file(uploaded, *, declared_srid: int | None = None) -> Boundary:
    """An uploaded boundary file (a Django File: .name, .size, .chunks())."""
    return _read_features(uploaded, declared_srid, None).dissolved()


def read_boundary_features(
    uploaded, *, name_field: str = "", declared_srid: int | None = None
) -> list[NamedBoundary]:
    """Each feature of a boundary file as a boundary of its own (the parcels of
    a project, the projects of a county), named by its ``name_field`` (its
    number from 1 without one). The file is vetted as ``read_boundary_file``
    vets it, and each feature as a whole boundary would be."""
    features = _read_features(uploaded, declared_srid, name_field or None)
    named = []
    for number, (polygons, name) in enumerate(
        zip(features.polygons, features.names, strict=True), 1
    ):
        label = str(number) if not name_field else "" if name is None else str(name)
        try:
            boundary = _build(polygons, 1, features.srid)
        except ValidationError as error:
            reason = " ".join(error.messages)
            raise _refuse("invalid_feature", feature=label, reason=reason) from None
        named.append(NamedBoundary(label, boundary))
    if not named:
        raise _refuse("empty_geometry")
    return named


def _read_features(uploaded, declared_srid: int | None, name_field: str | None):
    _check_declared(declared_srid)
    kind = FORMATS.get(PurePosixPath(uploaded.name or "").suffix.lower())
    if kind is None:
        raise _refuse("unsupported_format")
    limit = _max_bytes()
    if (uploaded.size or 0) > limit:
        raise _too_large(limit)
    with tempfile.TemporaryDirectory(prefix="boundary-") as workdir:
        path = Path(workdir) / "upload"
        _save(uploaded, path, limit)
        return _READERS[kind](path, declared_srid, name_field)


# What pyogrio raises for a file GDAL cannot read through (a damaged table, a
# field or geometry it cannot convert): refused as an unreadable file.
READ_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
)


@dataclass(frozen=True)
class PolygonSource:
    """A vetted polygon layer on disk, for reading in bulk with pyogrio."""

    path: Path  # what GDAL opens
    layer: str
    srid: int


@contextmanager
def open_polygon_source(path: Path, *, declared_srid: int | None = None):
    """Yield a ``PolygonSource`` for polygons with attributes in a zipped
    Shapefile or a GeoPackage on disk (land-use maps), vetted exactly as
    boundary files are; valid only inside the ``with`` block.

    GDAL is reached through pyogrio only: GeoDjango's older GDAL logs an ERROR
    for every GeoPackage a newer GDAL wrote ("may only be partially
    supported"). The GeoPackage is vetted and read where it lies, not copied:
    callers pass server-named files (an upload's temporary file, or the
    stored dataset), and a county's survey can take gigabytes."""
    _check_declared(declared_srid)
    suffix = path.suffix.lower()
    with tempfile.TemporaryDirectory(prefix="polygons-") as workdir:
        if suffix == ".zip":
            if _head(path, 4) != b"PK\x03\x04":
                raise _refuse("invalid_file", format="ZIP")
            # Only .shp, .shx and .dbf are extracted: GDAL never sees the .prj.
            shp, prj = _extract_shapefile(path, Path(workdir))
            found = _identify(prj, declared_srid) if prj else None
            layer = _single_source_layer(shp, "Shapefile")
            yield PolygonSource(shp, layer, _resolve_srid(found, declared_srid))
        elif suffix == ".gpkg":
            head = _head(path, 72)
            if not head.startswith(b"SQLite format 3\x00") or (
                head[68:72] not in GPKG_APPLICATION_IDS
            ):
                raise _refuse("invalid_file", format="GeoPackage")
            _vet_geopackage(path)
            layer = _single_source_layer(path, "GeoPackage")
            found = _source_srid(path, layer, declared_srid)
            yield PolygonSource(path, layer, _resolve_srid(found, declared_srid))
        else:
            raise _refuse("unsupported_format")


def _single_source_layer(path: Path, format_name: str) -> str:
    """The one spatial layer, or the one polygon layer among several."""
    try:
        layers = pyogrio.list_layers(path)
    except pyogrio.errors.DataSourceError:
        raise _refuse("invalid_file", format=format_name) from None
    kinds = {
        str(name): str(kind).split(" ")[0].removesuffix("25D")
        for name, kind in layers
        if kind is not None
    }
    polygonal = [n for n, kind in kinds.items() if kind in ("Polygon", "MultiPolygon")]
    for candidates in (list(kinds), polygonal):
        if len(candidates) == 1:
            return candidates[0]
    if not kinds:
        raise _refuse("empty_geometry")
    raise _refuse("ambiguous_layers", names=", ".join(polygonal or kinds))


def _source_srid(path: Path, layer: str, declared: int | None) -> int | None:
    """The EPSG code of a vetted GeoPackage layer's CRS (its definitions are WKT)."""
    try:
        crs = pyogrio.read_info(path, layer=layer)["crs"]
    except pyogrio.errors.DataSourceError:
        raise _refuse("invalid_file", format="GeoPackage") from None
    if not crs:
        return None
    if match := re.fullmatch(r"EPSG:(\d+)", crs):
        return int(match[1])
    return _identify(crs, declared)


def parse_geojson_geometry(text: str, *, declared_srid: int | None = None) -> Boundary:
    """A GeoJSON Geometry, Feature or FeatureCollection, e.g. drawn on a web map."""
    _check_declared(declared_srid)
    if len(text) > _max_bytes():
        raise _too_large(_max_bytes())
    if not text.strip():
        raise _refuse("empty_file:text")
    return _from_geojson(text, declared_srid, None).dissolved()


def normalize_geometry(geometry: GEOSGeometry) -> Boundary:
    """A geometry that already carries its SRID (admin, API), validated and in 4326."""
    srid = _resolve_srid(geometry.srid, None)
    return _build(_polygons(OGRGeometry(geometry.wkb)), 1, srid)


def geojson_feature(geometry: GEOSGeometry, **properties) -> dict:
    """A GeoJSON Feature (lon/lat) for the web maps."""
    return {
        "type": "Feature",
        "geometry": json.loads(geometry.json),
        "properties": properties,
    }


def geodesic_area_ha(geometry: GEOSGeometry) -> Decimal:
    """Area in hectares on the WGS84 ellipsoid of a lon/lat (EPSG:4326) geometry."""
    if geometry.srid not in (None, 4326):
        raise ValueError(f"Expected a geometry in EPSG:4326, got EPSG:{geometry.srid}.")
    square_metres = geodesy.geodesic_area_m2(shapely.from_wkb(bytes(geometry.wkb)))
    return quantities.area_ha(square_metres)


# Formats


def _max_bytes() -> int:
    return getattr(settings, "REGISTRY_BOUNDARY_MAX_BYTES", MAX_UPLOAD_BYTES)


def _save(uploaded, path: Path, limit: int) -> None:
    """Copy the upload to ``path``, counting: a declared .size may lie."""
    size = 0
    with path.open("wb") as out:
        for chunk in uploaded.chunks():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            out.write(chunk)
    if size == 0:
        raise _refuse("empty_file")


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


def _read_geojson(
    path: Path, declared_srid: int | None, name_field: str | None
) -> _Features:
    data = path.read_bytes()
    if not data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        raise _refuse("invalid_file", format="GeoJSON")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse("invalid_geojson:encoding") from None
    return _from_geojson(text, declared_srid, name_field)


def _read_kml(
    path: Path, declared_srid: int | None, name_field: str | None
) -> _Features:
    prolog, root, _rest = _head(path, 4096).partition(b"<kml")
    # KML never needs a DTD; refusing one rules out XML entity tricks.
    if not root or b"<!DOCTYPE" in prolog.upper():
        raise _refuse("invalid_file", format="KML")
    srid = _resolve_srid(4326, declared_srid)  # KML is WGS 84 by definition
    datasource = _open(path.rename(path.with_suffix(".kml")), "KML")
    # KML folders (GDAL layers) only organise placemarks: read them all.
    polygons, names = [], []
    for layer in datasource:
        layer_polygons, layer_names = _layer_features(layer, name_field)
        polygons += layer_polygons
        names += layer_names
    return _Features(polygons, names, srid)


def _read_geopackage(
    path: Path, declared_srid: int | None, name_field: str | None
) -> _Features:
    head = _head(path, 72)
    if not head.startswith(b"SQLite format 3\x00") or (
        head[68:72] not in GPKG_APPLICATION_IDS
    ):
        raise _refuse("invalid_file", format="GeoPackage")
    path = path.rename(path.with_suffix(".gpkg"))
    _vet_geopackage(path)
    # Through pyogrio, as land-use layers are: GeoDjango's older GDAL logs an
    # ERROR for every GeoPackage a newer GDAL wrote.
    layer = _single_source_layer(path, "GeoPackage")
    srid = _resolve_srid(_source_srid(path, layer, declared_srid), declared_srid)
    return _Features(*_source_features(path, layer, name_field), srid)


def _source_features(
    path: Path, layer: str, name_field: str | None
) -> tuple[list[list[GEOSGeometry]], list[object]]:
    """``_layer_features`` of a layer read in bulk with pyogrio."""
    try:
        fields = [
            str(field) for field in pyogrio.read_info(path, layer=layer)["fields"]
        ]
        if name_field is not None and name_field not in fields:
            raise _refuse("missing_name_field", field=name_field)
        _meta, _fids, geometries, values = pyogrio.raw.read(
            path, layer=layer, columns=[] if name_field is None else [name_field]
        )
    except READ_ERRORS:
        raise _refuse("invalid_file", format="GeoPackage") from None
    polygons = []
    for wkb in geometries:
        if wkb is None:
            raise _refuse("not_polygon:missing")
        try:
            geometry = OGRGeometry(memoryview(bytes(wkb)))
        except GDALException:
            raise _refuse("invalid_file", format="GeoPackage") from None
        polygons.append(_polygons(geometry))
    names = [None] * len(polygons) if name_field is None else list(values[0])
    return polygons, names


def _read_shapefile(
    path: Path, declared_srid: int | None, name_field: str | None
) -> _Features:
    if _head(path, 4) != b"PK\x03\x04":
        raise _refuse("invalid_file", format="ZIP")
    shp, prj = _extract_shapefile(path, path.parent)
    found = _identify(prj, declared_srid) if prj else None
    srid = _resolve_srid(found, declared_srid)
    layer = _open(shp, "Shapefile")[0]
    return _Features(*_layer_features(layer, name_field), srid)


_READERS = {
    "GeoJSON": _read_geojson,
    "KML": _read_kml,
    "Shapefile": _read_shapefile,
    "GeoPackage": _read_geopackage,
}


def _open(path: Path, format_name: str) -> DataSource:
    try:
        return DataSource(str(path))
    except GDALException:
        raise _refuse("invalid_file", format=format_name) from None


def _vet_geopackage(path: Path) -> None:
    """Before GDAL opens it: no views (their SQL would run, even endlessly) and CRSs
    only as WKT (GDAL 3.6 hands them to SetFromUserInput, which opens paths, URLs)."""
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'view'").fetchone():
                raise _refuse("invalid_file:views")
            rows = db.execute("SELECT * FROM gpkg_spatial_ref_sys")
            columns = [column[0] for column in rows.description]
            definitions = [
                str(value)
                for row in rows
                for column, value in zip(columns, row, strict=True)
                if column.startswith("definition")
            ]
    except sqlite3.Error:
        raise _refuse("invalid_file", format="GeoPackage") from None
    if not all(d == "undefined" or _WKT.match(d) for d in definitions):
        raise _refuse("unsupported_crs:not_wkt")


# ZIP archives


def _extract_shapefile(archive: Path, workdir: Path) -> tuple[Path, str | None]:
    """Vet the archive, write its .shp/.shx/.dbf under fixed names; return the .shp
    path and the .prj text (read by pyproj only)."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            parts = _shapefile_parts(_vetted_entries(zipped))
            for suffix in SHAPEFILE_PARTS:
                target = workdir / f"boundary{suffix}"
                with zipped.open(parts[suffix]) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            prj = None
            if ".prj" in parts:
                with zipped.open(parts[".prj"]) as file:
                    prj = file.read(MAX_PRJ_BYTES).decode("latin-1")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        raise _refuse("invalid_file", format="ZIP") from None
    for suffix in (".shp", ".shx"):
        if _head(workdir / f"boundary{suffix}", 4) != SHAPE_MAGIC:
            raise _refuse("invalid_file", format="Shapefile")
    return workdir / "boundary.shp", prj


def _vetted_entries(zipped: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Refuse the whole archive for any unsafe entry; return the files worth reading."""
    entries = zipped.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise _refuse("too_many_entries", count=len(entries), limit=MAX_ZIP_ENTRIES)
    for entry in entries:
        name = entry.filename
        if _unsafe_name(name) or stat.S_ISLNK(entry.external_attr >> 16):
            raise _refuse("unsafe_archive", name=name)
        if entry.flag_bits & 0x1:
            raise _refuse("encrypted_archive")
        if name.lower().endswith(NESTED_ARCHIVES):
            raise _refuse("nested_archive", name=name)
        if entry.file_size > max(
            ZIP_RATIO_FROM_BYTES, MAX_ZIP_RATIO * entry.compress_size
        ):
            raise _refuse("zip_bomb")
    if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
        raise _refuse("zip_bomb")
    return [entry for entry in entries if not entry.is_dir() and not _clutter(entry)]


def _unsafe_name(name: str) -> bool:
    return (
        "\\" in name
        or name.startswith("/")
        or re.match(r"[A-Za-z]:", name) is not None
        or ".." in name.split("/")
    )


def _clutter(entry: zipfile.ZipInfo) -> bool:
    """macOS resource forks (__MACOSX/, ._x.shp) and other hidden files."""
    path = PurePosixPath(entry.filename)
    return path.parts[0] == "__MACOSX" or path.name.startswith(".")


def _shapefile_parts(entries: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The one Shapefile's parts by lower-case suffix; they may sit in a folder."""
    shps = [entry for entry in entries if entry.filename.lower().endswith(".shp")]
    if len(shps) > 1:
        names = ", ".join(entry.filename for entry in shps)
        raise _refuse("multiple_shapefiles", names=names)
    stem = shps[0].filename[:-4] if shps else "boundary"
    parts = {
        entry.filename[-4:].lower(): entry
        for entry in entries
        if entry.filename[:-4].lower() == stem.lower()
        and entry.filename[-4:].lower() in (*SHAPEFILE_PARTS, ".prj")
    }
    for suffix in SHAPEFILE_PARTS:
        if suffix not in parts:
            part = PurePosixPath(stem).name + suffix
            raise _refuse("shapefile_incomplete", part=part)
    return parts


# GeoJSON


def _from_geojson(
    text: str, declared_srid: int | None, name_field: str | None
) -> _Features:
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise _refuse("invalid_geojson", detail=str(error)[:200]) from None
    if not isinstance(document, dict):
        raise _refuse("invalid_geojson:type")
    geometries = _geojson_geometries(document)
    polygons = [_polygons(_bare_ogr(g)) for g in geometries]
    names = [_geojson_name(d, name_field) for d in _geojson_properties(document)]
    # RFC 7946 means lon/lat, but without a "crs" numbers beyond it are metres.
    lonlat = all(
        _within(polygon.extent, (-180, -90, 180, 90))
        for feature in polygons
        for polygon in feature
    )
    found = _geojson_crs(document.get("crs"))
    srid = _resolve_srid(found, declared_srid, default=4326 if lonlat else None)
    return _Features(polygons, names, srid)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _geojson_geometries(document: dict) -> list:
    kind, features = document.get("type"), document.get("features")
    if kind == "FeatureCollection" and isinstance(features, list):
        return [_feature_geometry(feature) for feature in features]
    if kind == "Feature":
        return [_feature_geometry(document)]
    if "coordinates" in document or "geometries" in document:
        return [document]
    raise _refuse("invalid_geojson:type")


def _geojson_properties(document: dict) -> list[dict]:
    """The properties of each feature ``_geojson_geometries`` lists."""
    if document.get("type") == "FeatureCollection":
        features = document["features"]
    elif document.get("type") == "Feature":
        features = [document]
    else:
        return [{}]
    return [feature.get("properties") or {} for feature in features]


def _geojson_name(properties, name_field: str | None):
    if name_field is None:
        return None
    if not isinstance(properties, dict) or name_field not in properties:
        raise _refuse("missing_name_field", field=name_field)
    return properties[name_field]


def _feature_geometry(feature) -> dict:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _refuse("invalid_geojson:type")
    if feature.get("geometry") is None:
        raise _refuse("not_polygon:missing")
    return feature["geometry"]


def _bare_ogr(geometry) -> OGRGeometry:
    """GDAL gets ``type`` and ``coordinates`` only: it would act on a ``crs``."""

    def bare(node):
        if not isinstance(node, dict):
            raise _refuse("invalid_geojson:geometry")
        if node.get("type") == "GeometryCollection":
            members = node.get("geometries") or []
            return {"type": node["type"], "geometries": [bare(m) for m in members]}
        return {"type": node.get("type"), "coordinates": node.get("coordinates")}

    try:
        return OGRGeometry.from_json(json.dumps(bare(geometry)))
    except (GDALException, RecursionError, TypeError):
        raise _refuse("invalid_geojson:geometry") from None


def _geojson_crs(crs) -> int | None:
    """The EPSG code a legacy (2008) ``crs`` member names; parsed here, not by GDAL."""
    if crs is None:
        return None
    properties = crs.get("properties") if isinstance(crs, dict) else None
    name = str(properties.get("name", "")) if isinstance(properties, dict) else ""
    if name.upper().endswith("CRS84"):
        return 4326
    if match := _EPSG_URN.fullmatch(name.strip()):
        return int(match["code"])
    raise _refuse("unsupported_crs:unknown", found=(name or json.dumps(crs))[:120])


# Coordinate systems


def _check_declared(declared_srid: int | None) -> None:
    if declared_srid is not None and declared_srid not in ACCEPTED_SRIDS:
        raise _refuse("unsupported_crs", found=declared_srid)


def _identify(wkt: str, declared: int | None) -> int | None:
    """EPSG code of OGC or ESRI WKT (such as PROJCS["CGCS2000_3_Degree_GK_Zone_35");
    when it matches none, as with home-made datum names, a declared CRS may stand."""
    try:
        crs = pyproj.CRS.from_wkt(wkt)
    except pyproj.exceptions.CRSError:
        crs = None
    epsg = crs.to_epsg(min_confidence=70) if crs else None
    if epsg is None and declared is None:
        found = crs.name if crs else wkt.strip()
        raise _refuse("unsupported_crs:unknown", found=found[:120])
    return epsg


def _resolve_srid(found: int | None, declared: int | None, *, default=None) -> int:
    """The file's own CRS, else the declared one, else the format's default."""
    if found is not None and found not in ACCEPTED_SRIDS:
        raise _refuse("unsupported_crs", found=found)
    if found is not None and declared is not None and found != declared:
        raise _refuse("crs_conflict", found=found, declared=declared)
    srid = found or declared or default
    if srid is None:
        raise _refuse("missing_crs")
    return srid


# Geometry


def _layer_features(
    layer, name_field: str | None
) -> tuple[list[list[GEOSGeometry]], list[object]]:
    """The polygons of each feature, and its ``name_field`` value (None without)."""
    if name_field is not None and name_field not in layer.fields:
        raise _refuse("missing_name_field", field=name_field)
    polygons, names = [], []
    for feature in layer:
        try:
            geometry = feature.geom
        except (GDALException, TypeError):  # none, or a kind GeoDjango cannot hold
            raise _refuse("not_polygon:missing") from None
        polygons.append(_polygons(geometry))
        names.append(None if name_field is None else feature.get(name_field))
    return polygons, names


def _polygons(geometry: OGRGeometry) -> list[GEOSGeometry]:
    """The non-empty 2D polygons of a geometry; anything not an area is refused."""
    geometry.set_3d(False)
    geometry.set_measured(False)
    name = geometry.geom_name
    if name in ("MULTIPOLYGON", "GEOMETRYCOLLECTION"):
        return [polygon for member in geometry for polygon in _polygons(member)]
    if name != "POLYGON":
        raise _refuse("not_polygon", found=name)
    try:
        polygon = geometry.geos
    except GEOSException:
        raise _refuse("invalid_geometry:ring") from None
    return [] if polygon.empty else [polygon]


def _build(polygons: list[GEOSGeometry], count: int, srid: int) -> Boundary:
    if not polygons:
        raise _refuse("empty_geometry")
    vertices = sum(polygon.num_coords for polygon in polygons)
    if vertices > MAX_VERTICES:
        raise _refuse("too_complex", count=vertices, limit=MAX_VERTICES)
    for polygon in polygons:
        if not polygon.valid:
            raise _refuse("invalid_geometry", reason=polygon.valid_reason)
    merged = MultiPolygon(*polygons, srid=srid)
    if len(polygons) > 1:  # overlapping features become one area
        union = merged.unary_union
        merged = union if isinstance(union, MultiPolygon) else MultiPolygon(union)
        merged.srid = srid
    try:
        merged.transform(4326)  # from integer SRIDs, GeoDjango keeps x=lon, y=lat
    except (GDALException, GEOSException):
        raise _refuse("outside_china:unplaceable") from None
    if not _within(merged.extent, CHINA_EXTENT):
        xmin, ymin, xmax, ymax = merged.extent
        lon, lat = f"{xmin:.4f} to {xmax:.4f}", f"{ymin:.4f} to {ymax:.4f}"
        raise _refuse("outside_china", lon=lon, lat=lat)
    if not merged.valid:
        raise _refuse("invalid_geometry", reason=merged.valid_reason)
    area = geodesic_area_ha(merged)
    if area <= 0:
        raise _refuse("zero_area")
    return Boundary(
        geometry=merged, source_srid=srid, area_ha=area, feature_count=count
    )


def _within(extent, bounds) -> bool:
    """Written so that NaN coordinates fail."""
    west, south, east, north = bounds
    xmin, ymin, xmax, ymax = extent
    return west <= xmin and xmax <= east and south <= ymin and ymax <= north


# Refusals: the code is the key up to any ":variant".

MESSAGES = {
    "unsupported_format": _(
        "This type of file is not supported. Upload the boundary as GeoJSON (.geojson "
        "or .json), KML (.kml), a zipped Shapefile (.zip) or a GeoPackage (.gpkg)."
    ),
    "empty_file": _("The file is empty. Export the boundary again and upload it."),
    "empty_file:text": _("The boundary is empty. Draw or paste it again."),
    "file_too_large": _(
        "The file is larger than the %(limit)s MB limit. Simplify the boundary or "
        "remove other layers and attributes, then upload it again."
    ),
    "invalid_file": _(
        "The file is not a readable %(format)s file. Export the boundary again from "
        "your GIS software and upload the new file."
    ),
    "invalid_file:views": _(
        "GeoPackages with database views are not accepted. Save the boundary layer "
        "as a plain table in a new GeoPackage and upload that."
    ),
    "invalid_geojson": _(
        "The GeoJSON could not be read (%(detail)s). Check that the text is complete."
    ),
    "invalid_geojson:encoding": _(
        "The GeoJSON file is not UTF-8 text. Save it as UTF-8 and upload it again."
    ),
    "invalid_geojson:type": _(
        "The GeoJSON is not a Geometry, Feature or FeatureCollection object."
    ),
    "invalid_geojson:geometry": _(
        "A GeoJSON geometry has no valid type or coordinates. Export it again."
    ),
    "too_many_entries": _(
        "The ZIP archive holds %(count)s files; at most %(limit)s are allowed. Zip "
        "only the Shapefile's own files (.shp, .shx, .dbf and .prj)."
    ),
    "unsafe_archive": _(
        "The ZIP archive entry “%(name)s” is a link or a path outside the archive, "
        "which is not allowed. Zip the Shapefile's files again."
    ),
    "encrypted_archive": _(
        "The ZIP archive is password-protected. Upload it without a password."
    ),
    "nested_archive": _(
        "The ZIP archive contains another archive (“%(name)s”). Put the Shapefile's "
        "files directly into one ZIP archive."
    ),
    "zip_bomb": _(
        "The ZIP archive would expand to far more data than a boundary needs, so it "
        "was not opened. Zip only the Shapefile's own files."
    ),
    "multiple_shapefiles": _(
        "The ZIP archive contains several Shapefiles (%(names)s). Upload one "
        "Shapefile per ZIP archive."
    ),
    "shapefile_incomplete": _(
        "The Shapefile is incomplete: “%(part)s” is missing from the ZIP archive. "
        "Zip the .shp, .shx and .dbf files (and the .prj) together."
    ),
    "ambiguous_layers": _(
        "The GeoPackage has several layers (%(names)s), so it is not clear which is "
        "the boundary. Save the boundary layer on its own and upload that file."
    ),
    "missing_crs": _(
        "The file does not say which coordinate system it uses. Choose the coordinate "
        "system (for example EPSG:4523, CGCS2000 / 3-degree Gauss-Kruger zone 35) "
        "and upload the file again."
    ),
    "unsupported_crs": _(
        "The coordinate system EPSG:%(found)s is not accepted. Use WGS 84 (EPSG:4326), "
        "CGCS2000 (EPSG:4490) or a CGCS2000 Gauss-Kruger zone (EPSG:4491 to 4554), or "
        "reproject the boundary in your GIS software."
    ),
    "unsupported_crs:unknown": _(
        "The coordinate system “%(found)s” could not be recognised. Use WGS 84 "
        "(EPSG:4326), CGCS2000 (EPSG:4490) or a CGCS2000 Gauss-Kruger zone (EPSG:4491 "
        "to 4554), or reproject the boundary in your GIS software."
    ),
    "unsupported_crs:not_wkt": _(
        "The GeoPackage defines a coordinate system in a form other than WKT. Save "
        "the boundary again from your GIS software and upload the new file."
    ),
    "crs_conflict": _(
        "The file says its coordinates are in EPSG:%(found)s, but EPSG:%(declared)s "
        "was chosen. Choose the file's own coordinate system, or leave it unchosen."
    ),
    "not_polygon": _(
        "The boundary must be made of polygons, but the file also contains a "
        "%(found)s. Remove points, lines and other features that are not areas."
    ),
    "not_polygon:missing": _(
        "The file contains a feature without a polygon. Delete features that are "
        "empty or not areas and upload the file again."
    ),
    "empty_geometry": _(
        "The file contains no boundary polygon. Check that the right layer was "
        "exported and that it is not empty."
    ),
    "too_complex": _(
        "The boundary has %(count)s vertices; at most %(limit)s are allowed. Simplify "
        "it in your GIS software (about 1 metre tolerance) and upload it again."
    ),
    "invalid_geometry": _(
        "The boundary is not a valid polygon: %(reason)s. Correct it in your GIS "
        "software (rings must not cross themselves or each other) and upload again."
    ),
    "invalid_geometry:ring": _(
        "The boundary has a ring that is not closed or has fewer than four points. "
        "Correct it in your GIS software and upload it again."
    ),
    "outside_china": _(
        "The boundary is not in China: it spans longitude %(lon)s, latitude %(lat)s. "
        "Check that the coordinate system matches the file."
    ),
    "outside_china:unplaceable": _(
        "The coordinates cannot be placed on the map in this coordinate system. "
        "Check that the coordinate system matches the file."
    ),
    "missing_name_field": _(
        "The features have no field “%(field)s”. Give the name of a field every "
        "feature has, or leave it out to number the features."
    ),
    "invalid_feature": _("Feature “%(feature)s”: %(reason)s"),
    "zero_area": _(
        "The boundary encloses no measurable area. Check that it was drawn or "
        "exported correctly."
    ),
}


def _refuse(key: str, **params) -> ValidationError:
    code = key.partition(":")[0]
    return ValidationError(MESSAGES[key], code=code, params=params or None)


def _too_large(limit: int) -> ValidationError:
    return _refuse("file_too_large", limit=f"{limit / 2**20:.3g}")
