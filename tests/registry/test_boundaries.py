"""Boundary files and drawn GeoJSON -> validated EPSG:4326 MultiPolygons.

Every fixture file is built here: with pyogrio (its own, newer GDAL) for real
Shapefiles, GeoPackages, KML and GeoJSON, or by hand for broken and hostile input.
"""

import functools
import io
import json
import logging
import sqlite3
import stat
import zipfile
from pathlib import Path

import numpy as np
import pyogrio.raw
import pyproj
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from registry import boundaries

DIVISIONS = Path(__file__).resolve().parents[2] / "data" / "bijie" / "divisions.geojson"
SQUARE = box(105.30, 27.30, 105.31, 27.31)  # about 1 km x 1.1 km in Qixingguan
GEOD = pyproj.Geod(ellps="WGS84")
CENTIMETRE_IN_DEGREES = 1e-7


# Helpers


def geodesic_ha(shape) -> float:
    return abs(GEOD.geometry_area_perimeter(shape)[0]) / 10_000


@functools.cache
def from_wgs84(epsg: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(4326, epsg, always_xy=True)


def to_crs(shape, epsg: int):
    return shapely.transform(shape, from_wgs84(epsg).transform, interleaved=False)


def write_layer(path: Path, shapes, crs, driver, *, layer=None, geometry_type=None):
    pyogrio.raw.write(
        str(path),
        geometry=np.array([shapely.to_wkb(shape) for shape in shapes], dtype=object),
        field_data=[np.arange(len(shapes), dtype=np.int32)],
        fields=["id"],
        crs=crs,
        driver=driver,
        layer=layer,
        geometry_type=geometry_type or shapes[0].geom_type,
    )
    return path


def zip_entries(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def shapefile_entries(tmp_path, shape, crs, stem="parcel") -> dict[str, bytes]:
    """The files pyogrio writes for one Shapefile, by name (.shp, .shx, .dbf...)."""
    folder = tmp_path / stem
    folder.mkdir()
    write_layer(folder / f"{stem}.shp", [shape], crs, "ESRI Shapefile")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def upload(name: str, data: bytes | str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data.encode() if isinstance(data, str) else data)


def feature_collection(*shapes, crs=None) -> str:
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": mapping(shape)}
            for shape in shapes
        ],
    }
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(document)


def division(name_en: str) -> dict:
    features = json.loads(DIVISIONS.read_text(encoding="utf-8"))["features"]
    return next(f for f in features if f["properties"]["name_en"].startswith(name_en))


def assert_lands_on(boundary, expected, *, srid):
    geometry = boundary.geometry
    assert geometry.geom_type == "MultiPolygon"
    assert geometry.srid == 4326
    assert not geometry.hasz
    assert boundary.source_srid == srid
    # lon/lat order, not lat/lon or northing/easting
    assert geometry.centroid.x == pytest.approx(expected.centroid.x, abs=1e-6)
    assert geometry.centroid.y == pytest.approx(expected.centroid.y, abs=1e-6)
    got = shapely.from_wkb(bytes(geometry.wkb))
    assert shapely.hausdorff_distance(got, expected) < CENTIMETRE_IN_DEGREES
    # within 0.01%, or the 0.0001 ha the area is rounded to
    expected_ha = pytest.approx(geodesic_ha(expected), rel=1e-4, abs=1e-4)
    assert float(boundary.area_ha) == expected_ha


def refused(code: str, call, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        call(*args, **kwargs)
    error = raised.value
    assert error.code == code, error.messages
    assert error.messages
    assert all(isinstance(message, str) and message for message in error.messages)
    return error


# Each format round-trips a polygon in Bijie


def test_geojson_file_round_trips(tmp_path):
    path = write_layer(tmp_path / "parcel.geojson", [SQUARE], "EPSG:4326", "GeoJSON")
    boundary = boundaries.read_boundary_file(
        upload("parcel.geojson", path.read_bytes())
    )
    assert_lands_on(boundary, SQUARE, srid=4326)
    assert boundary.feature_count == 1


def test_drawn_leaflet_feature_round_trips():
    drawn = {"type": "Feature", "properties": {}, "geometry": mapping(SQUARE)}
    boundary = boundaries.parse_geojson_geometry(json.dumps(drawn))
    assert_lands_on(boundary, SQUARE, srid=4326)


def test_bare_geometry_in_a_json_file_round_trips():
    boundary = boundaries.read_boundary_file(
        upload("drawn.JSON", json.dumps(mapping(SQUARE)))
    )
    assert_lands_on(boundary, SQUARE, srid=4326)


def test_kml_round_trips_without_altitude(tmp_path):
    with_altitude = shapely.force_3d(SQUARE, 1800.0)
    path = write_layer(
        tmp_path / "parcel.kml",
        [with_altitude],
        "EPSG:4326",
        "KML",
        geometry_type="Polygon Z",
    )
    assert b"1800" in path.read_bytes()
    boundary = boundaries.read_boundary_file(upload("parcel.kml", path.read_bytes()))
    assert_lands_on(boundary, SQUARE, srid=4326)


def kml_placemark(shape) -> str:
    coordinates = " ".join(f"{x},{y},0" for x, y in shape.exterior.coords)
    return (
        "<Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        f"{coordinates}</coordinates></LinearRing></outerBoundaryIs></Polygon>"
        "</Placemark>"
    )


def test_kml_folders_are_read_together():
    east = box(105.31, 27.30, 105.32, 27.31)
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<Folder><name>west</name>{kml_placemark(SQUARE)}</Folder>"
        f"<Folder><name>east</name>{kml_placemark(east)}</Folder>"
        "</Document></kml>"
    )
    boundary = boundaries.read_boundary_file(upload("plots.kml", kml))
    assert boundary.feature_count == 2
    assert_lands_on(boundary, SQUARE.union(east), srid=4326)


def test_zipped_shapefile_round_trips(tmp_path):
    archive = zip_entries(shapefile_entries(tmp_path, SQUARE, "EPSG:4326"))
    boundary = boundaries.read_boundary_file(upload("parcel.zip", archive))
    assert_lands_on(boundary, SQUARE, srid=4326)


def test_geopackage_round_trips(tmp_path):
    path = write_layer(tmp_path / "parcel.gpkg", [SQUARE], "EPSG:4326", "GPKG")
    boundary = boundaries.read_boundary_file(upload("parcel.gpkg", path.read_bytes()))
    assert_lands_on(boundary, SQUARE, srid=4326)


def test_a_geopackage_from_a_newer_gdal_is_read_without_a_gdal_error(tmp_path, caplog):
    """The layer is written by pyogrio's GDAL, newer than GeoDjango's: opening
    it through GeoDjango logged "may only be partially supported" at ERROR."""
    path = write_layer(tmp_path / "parcel.gpkg", [SQUARE], "EPSG:4326", "GPKG")
    with caplog.at_level(logging.WARNING):
        boundaries.read_boundary_file(upload("parcel.gpkg", path.read_bytes()))
        boundaries.read_boundary_features(upload("parcel.gpkg", path.read_bytes()))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_real_county_upload_has_its_documented_area():
    weining = {"type": "FeatureCollection", "features": [division("Weining")]}
    boundary = boundaries.read_boundary_file(
        upload("weining.geojson", json.dumps(weining, ensure_ascii=False))
    )
    assert float(boundary.area_ha) / 100 == pytest.approx(6304.3, rel=5e-4)


# Feature by feature: each feature a boundary of its own

EAST = box(105.31, 27.30, 105.32, 27.31)
ACROSS = box(105.305, 27.30, 105.315, 27.31)  # overlaps both


def parcels_file(tmp_path, name: str) -> bytes:
    """SQUARE, EAST and ACROSS with ids 0, 1, 2 in a file of the given kind."""
    shapes, suffix = [SQUARE, EAST, ACROSS], Path(name).suffix
    if suffix == ".zip":
        folder = tmp_path / "parcels"
        folder.mkdir()
        write_layer(folder / "parcels.shp", shapes, "EPSG:4326", "ESRI Shapefile")
        return zip_entries({p.name: p.read_bytes() for p in folder.iterdir()})
    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON"}[suffix]
    return write_layer(tmp_path / name, shapes, "EPSG:4326", driver).read_bytes()


@pytest.mark.parametrize("name", ["parcels.geojson", "parcels.zip", "parcels.gpkg"])
def test_each_feature_is_read_as_a_boundary_of_its_own(tmp_path, name):
    data = parcels_file(tmp_path, name)

    named = boundaries.read_boundary_features(upload(name, data), name_field="id")
    numbered = boundaries.read_boundary_features(upload(name, data))

    assert [feature.name for feature in named] == ["0", "1", "2"]
    assert [feature.name for feature in numbered] == ["1", "2", "3"]
    for feature, shape in zip(named, [SQUARE, EAST, ACROSS], strict=True):
        assert feature.boundary.feature_count == 1
        assert_lands_on(feature.boundary, shape, srid=4326)  # not dissolved
    dissolved = boundaries.read_boundary_file(upload(name, data))
    assert_lands_on(dissolved, SQUARE.union(EAST), srid=4326)


@pytest.mark.parametrize("name", ["parcels.geojson", "parcels.gpkg"])
def test_a_missing_name_field_is_refused(tmp_path, name):
    refused(
        "missing_name_field",
        boundaries.read_boundary_features,
        upload(name, parcels_file(tmp_path, name)),
        name_field="parcel_no",
    )


def test_an_invalid_feature_is_refused_by_its_name():
    corners = [(105.30, 27.30), (105.31, 27.31), (105.31, 27.30), (105.30, 27.31)]
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"no": name}, "geometry": geometry}
            for name, geometry in [
                ("A-1", mapping(SQUARE)),
                ("A-2", mapping(shapely.Polygon(corners))),
            ]
        ],
    }
    error = refused(
        "invalid_feature",
        boundaries.read_boundary_features,
        upload("p.geojson", json.dumps(document)),
        name_field="no",
    )
    assert "“A-2”" in error.messages[0]
    assert "Self-intersection" in error.messages[0]


# Coordinate systems


@pytest.mark.parametrize(
    ("epsg", "driver"),
    [
        (4523, "ESRI Shapefile"),  # CGCS2000 3-degree GK zone 35 (with zone prefix)
        (4523, "GPKG"),
        (4523, "GeoJSON"),  # legacy "crs" member
        (4490, "ESRI Shapefile"),  # CGCS2000 geographic
        (4490, "GPKG"),
        (4502, "ESRI Shapefile"),  # 6-degree GK, CM 105E, no zone prefix
        (4502, "GPKG"),
        (4496, "GPKG"),  # 6-degree GK zone 18, with zone prefix
        (4543, "ESRI Shapefile"),  # 3-degree GK, CM 105E, no zone prefix
    ],
)
def test_cgcs2000_twin_lands_where_the_wgs84_polygon_does(tmp_path, epsg, driver):
    twin = to_crs(SQUARE, epsg)
    if driver == "ESRI Shapefile":
        name, data = (
            "parcel.zip",
            zip_entries(shapefile_entries(tmp_path, twin, f"EPSG:{epsg}")),
        )
    else:
        name = "parcel.gpkg" if driver == "GPKG" else "parcel.geojson"
        data = write_layer(tmp_path / name, [twin], f"EPSG:{epsg}", driver).read_bytes()
    boundary = boundaries.read_boundary_file(upload(name, data))
    assert_lands_on(boundary, SQUARE, srid=epsg)


def test_esri_prj_names_are_recognised(tmp_path):
    entries = shapefile_entries(tmp_path, to_crs(SQUARE, 4523), "EPSG:4523")
    assert entries["parcel.prj"].startswith(b'PROJCS["CGCS2000_3_Degree_GK_Zone_35"')
    boundary = boundaries.read_boundary_file(upload("parcel.zip", zip_entries(entries)))
    assert boundary.source_srid == 4523


@pytest.mark.parametrize(
    ("crs", "srid"),
    [
        ("urn:ogc:def:crs:EPSG::4490", 4490),
        ("EPSG:4490", 4490),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", 4326),
    ],
)
def test_geojson_crs_member_names(crs, srid):
    boundary = boundaries.parse_geojson_geometry(feature_collection(SQUARE, crs=crs))
    assert boundary.source_srid == srid


def test_geojson_gauss_kruger_coordinates_need_a_crs():
    text = feature_collection(to_crs(SQUARE, 4523))
    refused("missing_crs", boundaries.parse_geojson_geometry, text)
    boundary = boundaries.parse_geojson_geometry(text, declared_srid=4523)
    assert_lands_on(boundary, SQUARE, srid=4523)


def test_a_wrongly_declared_crs_is_caught_by_the_china_check():
    text = feature_collection(to_crs(SQUARE, 4523))
    refused(
        "outside_china", boundaries.parse_geojson_geometry, text, declared_srid=4326
    )


def test_shapefile_without_prj_needs_a_declared_crs(tmp_path):
    entries = shapefile_entries(tmp_path, to_crs(SQUARE, 4523), "EPSG:4523")
    del entries["parcel.prj"]
    archive = zip_entries(entries)
    refused("missing_crs", boundaries.read_boundary_file, upload("p.zip", archive))
    boundary = boundaries.read_boundary_file(
        upload("p.zip", archive), declared_srid=4523
    )
    assert_lands_on(boundary, SQUARE, srid=4523)


def test_declared_crs_contradicting_the_file_is_refused(tmp_path):
    path = write_layer(tmp_path / "p.gpkg", [to_crs(SQUARE, 4523)], "EPSG:4523", "GPKG")
    error = refused(
        "crs_conflict",
        boundaries.read_boundary_file,
        upload("p.gpkg", path.read_bytes()),
        declared_srid=4490,
    )
    assert "EPSG:4523" in error.messages[0]
    assert "EPSG:4490" in error.messages[0]


def test_shapefile_in_an_unaccepted_crs_is_refused_by_name(tmp_path):
    entries = shapefile_entries(tmp_path, to_crs(SQUARE, 3857), "EPSG:3857")
    error = refused(
        "unsupported_crs",
        boundaries.read_boundary_file,
        upload("p.zip", zip_entries(entries)),
    )
    assert "EPSG:3857" in error.messages[0]
    assert "EPSG:4326" in error.messages[0]  # and says what is accepted


def test_unrecognisable_prj_needs_a_declared_crs(tmp_path):
    entries = shapefile_entries(tmp_path, to_crs(SQUARE, 4523), "EPSG:4523")
    prj = entries["parcel.prj"].replace(b"D_China_2000", b"D_CGCS2000")
    archive = zip_entries(entries | {"parcel.prj": prj})
    error = refused(
        "unsupported_crs", boundaries.read_boundary_file, upload("p.zip", archive)
    )
    assert "zone 35" in error.messages[0].lower()  # says what it found
    boundary = boundaries.read_boundary_file(
        upload("p.zip", archive), declared_srid=4523
    )
    assert_lands_on(boundary, SQUARE, srid=4523)


@pytest.mark.parametrize(
    "crs",
    [
        {"type": "name", "properties": {"name": "EPSG:3857"}},
        {"type": "name", "properties": {"name": "/etc/passwd"}},
        # GDAL's own GeoJSON reader would fetch this URL.
        {"type": "link", "properties": {"href": "http://example.invalid/crs"}},
    ],
)
def test_geojson_crs_outside_the_list_is_refused(crs):
    document = json.loads(feature_collection(to_crs(SQUARE, 3857)))
    document["crs"] = crs
    refused("unsupported_crs", boundaries.parse_geojson_geometry, json.dumps(document))


def test_declared_crs_must_be_accepted():
    text = json.dumps(mapping(SQUARE))
    refused(
        "unsupported_crs", boundaries.parse_geojson_geometry, text, declared_srid=3857
    )
    refused(
        "unsupported_crs",
        boundaries.read_boundary_file,
        upload("p.geojson", text),
        declared_srid=4214,  # Beijing 1954
    )


def test_kml_is_always_wgs84(tmp_path):
    path = write_layer(tmp_path / "p.kml", [SQUARE], "EPSG:4326", "KML")
    kml = upload("p.kml", path.read_bytes())
    refused("crs_conflict", boundaries.read_boundary_file, kml, declared_srid=4523)


def test_crs_choices_list_every_accepted_crs():
    choices = boundaries.crs_choices()
    assert len(choices) == 66
    assert {srid for srid, _label in choices} == boundaries.ACCEPTED_SRIDS
    labels = dict(choices)
    assert labels[4523] == "EPSG:4523 · CGCS2000 / 3-degree Gauss-Kruger zone 35"
    assert labels[4490] == "EPSG:4490 · China Geodetic Coordinate System 2000"


@hypothesis_settings(max_examples=30, deadline=None)
@given(
    lon=st.floats(104.5, 106.3),
    lat=st.floats(26.3, 27.8),
    side=st.floats(0.0005, 0.05),
)
def test_any_gauss_kruger_square_in_bijie_round_trips(lon, lat, side):
    square = box(lon, lat, lon + side, lat + side)
    geometry = GEOSGeometry(to_crs(square, 4523).wkt, srid=4523)
    assert_lands_on(boundaries.normalize_geometry(geometry), square, srid=4523)


# Areas


def test_geodesic_area_of_bijie_city():
    city = GEOSGeometry(json.dumps(division("Bijie City")["geometry"]), srid=4326)
    assert float(boundaries.geodesic_area_ha(city)) / 100 == pytest.approx(
        26_865.8, rel=5e-4
    )


def test_geodesic_area_of_weining_county():
    weining = GEOSGeometry(json.dumps(division("Weining")["geometry"]), srid=4326)
    assert float(boundaries.geodesic_area_ha(weining)) / 100 == pytest.approx(
        6_304.3, rel=5e-4
    )


def test_geodesic_area_ignores_ring_orientation_and_lines():
    clockwise = shapely.geometry.polygon.orient(SQUARE, sign=-1.0)
    mixed = shapely.GeometryCollection(
        [clockwise, shapely.LineString([(105, 27), (105.1, 27)])]
    )
    area = boundaries.geodesic_area_ha(GEOSGeometry(mixed.wkt, srid=4326))
    assert float(area) == pytest.approx(geodesic_ha(SQUARE), abs=1e-4)
    assert area.as_tuple().exponent == -4


def test_geodesic_area_needs_lon_lat():
    with pytest.raises(ValueError, match="EPSG:4326"):
        boundaries.geodesic_area_ha(GEOSGeometry(to_crs(SQUARE, 4523).wkt, srid=4523))


# Geometry rules


def test_overlapping_features_are_dissolved():
    other = box(105.305, 27.305, 105.315, 27.315)
    boundary = boundaries.parse_geojson_geometry(feature_collection(SQUARE, other))
    assert boundary.feature_count == 2
    assert boundary.geometry.valid
    assert_lands_on(boundary, SQUARE.union(other), srid=4326)


def test_holes_are_kept():
    with_hole = SQUARE.difference(box(105.303, 27.303, 105.307, 27.307))
    boundary = boundaries.parse_geojson_geometry(json.dumps(mapping(with_hole)))
    assert_lands_on(boundary, with_hole, srid=4326)
    assert boundary.area_ha < boundaries.geodesic_area_ha(
        GEOSGeometry(SQUARE.wkt, srid=4326)
    )


def test_normalize_geometry_transforms_and_flattens():
    geometry = GEOSGeometry(shapely.force_3d(to_crs(SQUARE, 4523), 900.0).wkt)
    geometry.srid = 4523
    assert_lands_on(boundaries.normalize_geometry(geometry), SQUARE, srid=4523)


def test_normalize_geometry_needs_an_accepted_srid():
    refused("missing_crs", boundaries.normalize_geometry, GEOSGeometry(SQUARE.wkt))
    mercator = GEOSGeometry(to_crs(SQUARE, 3857).wkt, srid=3857)
    refused("unsupported_crs", boundaries.normalize_geometry, mercator)


def test_self_intersecting_ring_is_refused_with_its_location():
    corners = [(105.30, 27.30), (105.31, 27.31), (105.31, 27.30), (105.30, 27.31)]
    bow_tie = shapely.Polygon(corners).wkt  # the edges cross at the centre
    error = refused(
        "invalid_geometry",
        boundaries.normalize_geometry,
        GEOSGeometry(bow_tie, srid=4326),
    )
    assert "Self-intersection[105.305 27.305]" in error.messages[0]


def test_unclosed_ring_is_refused():
    ring = {
        "type": "Polygon",
        "coordinates": [[[105.3, 27.3], [105.31, 27.3], [105.31, 27.31]]],
    }
    refused("invalid_geometry", boundaries.parse_geojson_geometry, json.dumps(ring))


@pytest.mark.parametrize(
    "text",
    [
        feature_collection(),
        json.dumps({"type": "Polygon", "coordinates": [[]]}),
    ],
)
def test_empty_geometry_is_refused(text):
    refused("empty_geometry", boundaries.parse_geojson_geometry, text)


def test_empty_geos_geometry_is_refused():
    empty = GEOSGeometry("POLYGON EMPTY", srid=4326)
    refused("empty_geometry", boundaries.normalize_geometry, empty)


@pytest.mark.parametrize(
    "shape",
    [
        shapely.Point(105.3, 27.3),
        shapely.LineString([(105.3, 27.3), (105.31, 27.31)]),
        shapely.GeometryCollection([SQUARE, shapely.Point(105.3, 27.3)]),
    ],
)
def test_anything_but_polygons_is_refused(shape):
    text = feature_collection(shape)
    refused("not_polygon", boundaries.parse_geojson_geometry, text)


def test_feature_without_geometry_is_refused():
    text = json.dumps({"type": "Feature", "properties": {}, "geometry": None})
    refused("not_polygon", boundaries.parse_geojson_geometry, text)


def test_points_in_a_shapefile_are_refused(tmp_path):
    entries = shapefile_entries(tmp_path, shapely.Point(105.3, 27.3), "EPSG:4326")
    archive = upload("p.zip", zip_entries(entries))
    refused("not_polygon", boundaries.read_boundary_file, archive)


def test_outside_china_is_refused():
    paris = box(2.35, 48.85, 2.36, 48.86)
    error = refused(
        "outside_china", boundaries.parse_geojson_geometry, json.dumps(mapping(paris))
    )
    assert "2.3500" in error.messages[0]


def test_coordinates_no_projection_can_place_are_refused():
    far = GEOSGeometry(box(1e20, 1e20, 2e20, 2e20).wkt, srid=4523)
    refused("outside_china", boundaries.normalize_geometry, far)


def test_too_many_vertices_is_refused():
    angles = np.linspace(0, 2 * np.pi, boundaries.MAX_VERTICES, endpoint=False)
    circle = shapely.Polygon(
        np.column_stack([105.3 + 0.01 * np.cos(angles), 27.3 + 0.01 * np.sin(angles)])
    )
    assert shapely.get_num_coordinates(circle) > boundaries.MAX_VERTICES
    geometry = GEOSGeometry(memoryview(shapely.to_wkb(circle)), srid=4326)
    refused("too_complex", boundaries.normalize_geometry, geometry)


def test_a_speck_has_no_measurable_area():
    speck = box(105.3, 27.3, 105.3000001, 27.3000001)
    refused("zero_area", boundaries.parse_geojson_geometry, json.dumps(mapping(speck)))


# Files that are not what they say


@pytest.mark.parametrize("name", ["parcel.kmz", "parcel.txt", "parcel", "parcel.shp"])
def test_unsupported_format_lists_the_accepted_ones(name):
    error = refused(
        "unsupported_format", boundaries.read_boundary_file, upload(name, "x")
    )
    assert ".gpkg" in error.messages[0]


def test_empty_file_is_refused():
    refused("empty_file", boundaries.read_boundary_file, upload("p.geojson", b""))
    refused("empty_file", boundaries.parse_geojson_geometry, "  \n")


def test_size_limit_comes_from_settings(settings):
    settings.REGISTRY_BOUNDARY_MAX_BYTES = 1024 * 1024
    text = json.dumps(mapping(SQUARE)) + " " * (1024 * 1024)
    error = refused(
        "file_too_large", boundaries.read_boundary_file, upload("p.json", text)
    )
    assert "1 MB" in error.messages[0]
    refused("file_too_large", boundaries.parse_geojson_geometry, text)


def test_size_limit_holds_when_the_declared_size_lies(settings):
    settings.REGISTRY_BOUNDARY_MAX_BYTES = 100
    lying = upload("p.json", json.dumps(mapping(SQUARE)))
    lying.size = 10
    refused("file_too_large", boundaries.read_boundary_file, lying)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.gpkg", b"just some text, not SQLite"),
        ("p.gpkg", b"SQLite format 3\x00" + b"\x00" * 200),  # SQLite, not GeoPackage
        ("p.zip", b"not a zip"),
        ("p.kml", json.dumps(mapping(SQUARE))),
        ("p.geojson", b"\x89PNG\r\n\x1a\n"),
        ("p.json", b"hello"),
    ],
)
def test_content_must_match_the_extension(name, data):
    refused("invalid_file", boundaries.read_boundary_file, upload(name, data))


def test_truncated_json_file_is_refused():
    text = '{"type": "Polygon", "coordinates": [[[105.3, 27.3], [105.31'
    refused("invalid_geojson", boundaries.read_boundary_file, upload("p.json", text))


@pytest.mark.parametrize(
    "text",
    [
        "[105.3, 27.3]",
        '{"type": "Topology", "objects": {}}',
        '{"type": "Polygon", "coordinates": "somewhere in Bijie"}',
        '{"type": "Polygon", "coordinates": [[[105.3, NaN], [105.31, 27.3]]]}',
        '{"type": "GeometryCollection", "geometries": [7]}',
    ],
)
def test_malformed_geojson_is_refused(text):
    refused("invalid_geojson", boundaries.parse_geojson_geometry, text)


def test_kml_with_a_doctype_is_refused():
    kml = '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]><kml/>'
    refused("invalid_file", boundaries.read_boundary_file, upload("p.kml", kml))


def test_shp_part_that_is_not_a_shapefile_is_refused(tmp_path):
    entries = shapefile_entries(tmp_path, SQUARE, "EPSG:4326")
    entries["parcel.shp"] = b"<OGRVRTDataSource>...</OGRVRTDataSource>"
    archive = upload("p.zip", zip_entries(entries))
    refused("invalid_file", boundaries.read_boundary_file, archive)


# ZIP archives


def test_folders_and_macos_clutter_are_fine(tmp_path):
    entries = shapefile_entries(tmp_path, SQUARE, "EPSG:4326")
    archive = {f"export/{name}": data for name, data in entries.items()}
    archive["__MACOSX/export/._parcel.shp"] = b"\x00\x05\x16\x07"
    archive["export/.DS_Store"] = b"\x00"
    boundary = boundaries.read_boundary_file(upload("p.zip", zip_entries(archive)))
    assert_lands_on(boundary, SQUARE, srid=4326)


@pytest.mark.parametrize("missing", ["parcel.shx", "parcel.dbf", "parcel.shp"])
def test_incomplete_shapefile_names_the_missing_part(tmp_path, missing):
    entries = shapefile_entries(tmp_path, SQUARE, "EPSG:4326")
    del entries[missing]
    error = refused(
        "shapefile_incomplete",
        boundaries.read_boundary_file,
        upload("p.zip", zip_entries(entries)),
    )
    assert missing.removeprefix("parcel") in error.messages[0]


def test_two_shapefiles_in_one_zip_are_refused(tmp_path):
    entries = shapefile_entries(tmp_path, SQUARE, "EPSG:4326", stem="a")
    entries |= shapefile_entries(tmp_path, SQUARE, "EPSG:4326", stem="b")
    archive = upload("p.zip", zip_entries(entries))
    refused("multiple_shapefiles", boundaries.read_boundary_file, archive)


@pytest.mark.parametrize(
    "name", ["../evil.shp", "/tmp/evil.shp", "C:/evil.shp", "parcel\\..\\evil.shp"]
)
def test_zip_entries_leaving_the_archive_are_refused(tmp_path, name):
    entries = shapefile_entries(tmp_path, SQUARE, "EPSG:4326")
    entries[name] = b"\x00\x00\x27\x0a"
    error = refused(
        "unsafe_archive",
        boundaries.read_boundary_file,
        upload("p.zip", zip_entries(entries)),
    )
    assert name in error.messages[0]


def test_zip_symlink_entry_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in shapefile_entries(tmp_path, SQUARE, "EPSG:4326").items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("readme.txt")
        link.create_system = 3  # Unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    archive = upload("p.zip", buffer.getvalue())
    refused("unsafe_archive", boundaries.read_boundary_file, archive)


def test_nested_archive_is_refused(tmp_path):
    inner = zip_entries(shapefile_entries(tmp_path, SQUARE, "EPSG:4326"))
    archive = upload("p.zip", zip_entries({"inner.zip": inner}))
    refused("nested_archive", boundaries.read_boundary_file, archive)


def test_zip_bomb_is_refused():
    bomb = zip_entries({"parcel.dbf": bytes(50 * 1024 * 1024)})
    assert len(bomb) * 100 < 50 * 1024 * 1024
    refused("zip_bomb", boundaries.read_boundary_file, upload("p.zip", bomb))


def test_too_many_entries_are_refused():
    archive = zip_entries({f"note{n}.txt": b"x" for n in range(21)})
    refused("too_many_entries", boundaries.read_boundary_file, upload("p.zip", archive))


def test_encrypted_zip_is_refused(tmp_path):
    archive = bytearray(zip_entries(shapefile_entries(tmp_path, SQUARE, "EPSG:4326")))
    central = archive.find(b"PK\x01\x02")
    archive[central + 8] |= 0x1  # the "encrypted" flag of the first entry
    refused(
        "encrypted_archive", boundaries.read_boundary_file, upload("p.zip", archive)
    )


# GeoPackages


def test_geopackage_with_several_polygon_layers_is_ambiguous(tmp_path):
    path = tmp_path / "p.gpkg"
    write_layer(path, [SQUARE], "EPSG:4326", "GPKG", layer="parcels")
    write_layer(
        path, [box(105.4, 27.4, 105.41, 27.41)], "EPSG:4326", "GPKG", layer="old"
    )
    error = refused(
        "ambiguous_layers",
        boundaries.read_boundary_file,
        upload("p.gpkg", path.read_bytes()),
    )
    assert "parcels" in error.messages[0]


def test_geopackage_polygon_layer_is_picked_among_others(tmp_path):
    path = tmp_path / "p.gpkg"
    write_layer(path, [SQUARE], "EPSG:4326", "GPKG", layer="parcel")
    write_layer(path, [shapely.Point(105.3, 27.3)], "EPSG:4326", "GPKG", layer="gate")
    boundary = boundaries.read_boundary_file(upload("p.gpkg", path.read_bytes()))
    assert_lands_on(boundary, SQUARE, srid=4326)


def test_geopackage_with_views_is_refused(tmp_path):
    path = write_layer(tmp_path / "p.gpkg", [SQUARE], "EPSG:4326", "GPKG", layer="p")
    with sqlite3.connect(path) as db:
        db.execute("CREATE VIEW v AS SELECT * FROM p")
    refused(
        "invalid_file",
        boundaries.read_boundary_file,
        upload("p.gpkg", path.read_bytes()),
    )


def test_geopackage_crs_must_be_wkt(tmp_path):
    """GDAL 3.6 would hand this text to SetFromUserInput, which opens paths."""
    path = write_layer(tmp_path / "p.gpkg", [to_crs(SQUARE, 4523)], "EPSG:4523", "GPKG")
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE gpkg_spatial_ref_sys SET definition = '/etc/passwd', "
            "organization = 'NONE' WHERE srs_id = 4523"
        )
    gpkg = upload("p.gpkg", path.read_bytes())
    refused("unsupported_crs", boundaries.read_boundary_file, gpkg)


# Messages


def test_messages_render_in_chinese_too():
    error = refused(
        "missing_crs",
        boundaries.parse_geojson_geometry,
        feature_collection(to_crs(SQUARE, 4523)),
    )
    with translation.override("zh-hans"):
        assert all(isinstance(message, str) and message for message in error.messages)
        later = refused(
            "unsafe_archive",
            boundaries.read_boundary_file,
            upload("p.zip", zip_entries({"../evil.shp": b"x"})),
        )
        assert "../evil.shp" in later.messages[0]
