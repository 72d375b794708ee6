"""common/geodesy.py: areas on the WGS84 ellipsoid and the TIFF signature."""

import numpy as np
import pyproj
import pytest
import shapely

from common import geodesy

ONE_DEGREE_AT_THE_EQUATOR_M2 = 12_308_778_361.47  # 1° x 1° from (0, 0), WGS84
SQUARE = shapely.box(0, 0, 1, 1)


def test_the_ellipsoid_is_wgs84():
    assert geodesy.WGS84.a == 6_378_137.0
    assert geodesy.WGS84.f == pytest.approx(1 / 298.257223563, rel=1e-12)


def test_a_degree_square_at_the_equator():
    assert geodesy.geodesic_area_m2(SQUARE) == pytest.approx(
        ONE_DEGREE_AT_THE_EQUATOR_M2, rel=1e-9
    )


def test_ring_orientation_does_not_change_the_sign_and_parts_add_up():
    clockwise = shapely.Polygon(list(SQUARE.exterior.coords)[::-1])
    other = shapely.box(10, 0, 11, 1)
    mixed = shapely.GeometryCollection(
        [shapely.MultiPolygon([clockwise, other]), shapely.LineString([(0, 0), (5, 5)])]
    )
    one = geodesy.geodesic_area_m2(SQUARE)
    assert geodesy.geodesic_area_m2(clockwise) == pytest.approx(one)
    assert geodesy.geodesic_area_m2(mixed) == pytest.approx(
        one + geodesy.geodesic_area_m2(other)
    )


def test_a_hole_is_not_counted():
    holed = shapely.Polygon(
        SQUARE.exterior.coords, [shapely.box(0.25, 0.25, 0.75, 0.75).exterior.coords]
    )
    assert geodesy.geodesic_area_m2(holed) == pytest.approx(
        ONE_DEGREE_AT_THE_EQUATOR_M2 * 0.75, rel=1e-3
    )


def test_a_ring_has_the_area_of_its_polygon_either_way_round():
    lons, lats = zip(*SQUARE.exterior.coords, strict=True)
    assert geodesy.ring_area_m2(lons, lats) == pytest.approx(
        ONE_DEGREE_AT_THE_EQUATOR_M2, rel=1e-9
    )
    assert geodesy.ring_area_m2(lons[::-1], lats[::-1]) == pytest.approx(
        ONE_DEGREE_AT_THE_EQUATOR_M2, rel=1e-9
    )


@pytest.mark.parametrize(
    "head", [b"II*\x00rest", b"MM\x00*rest", b"II+\x00\x08\x00", b"MM\x00+\x00\x08"]
)
def test_tiff_and_bigtiff_in_both_byte_orders_are_tiffs(head):
    assert geodesy.is_tiff(head)


@pytest.mark.parametrize(
    "head", [b"\x89PNG\r\n", b"<VRTDataset", b"II*", b"MM*\x00", b"", b"II\x00*"]
)
def test_other_files_are_not(head):
    assert not geodesy.is_tiff(head)


# The compiled areas of many polygons (survey layers) -------------------------


def _star(rng, lon, lat, radius_m, vertices):
    """A simple (star-shaped) lon/lat polygon about ``radius_m`` across."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = radius_m * rng.uniform(0.4, 1.0, vertices)
    dlon = radii * np.cos(angles) / (111_320 * np.cos(np.radians(lat)))
    dlat = radii * np.sin(angles) / 110_570
    return shapely.Polygon(np.column_stack([lon + dlon, lat + dlat]))


def _survey_patches(rng, count, smallest_m, largest_m, smallest_m2=0):
    """Random valid patches across China, some with a hole, some clockwise."""
    polygons = []
    while len(polygons) < count:
        lon, lat = rng.uniform(74, 134), rng.uniform(18, 53)
        radius = np.exp(rng.uniform(np.log(smallest_m), np.log(largest_m)))
        patch = _star(rng, lon, lat, radius, int(rng.integers(3, 60)))
        if rng.random() < 0.3:
            hole = _star(rng, lon, lat, radius * 0.3, 8)
            if patch.contains(hole):
                patch = shapely.Polygon(patch.exterior, [hole.exterior])
        if rng.random() < 0.5:
            patch = shapely.orient_polygons(patch, exterior_cw=True)
        if patch.is_valid and geodesy.geodesic_area_m2(patch) >= smallest_m2:
            polygons.append(patch)
    return np.array(polygons)


def test_compiled_areas_agree_with_pyproj_for_thousands_of_survey_patches():
    """Patches of 50 m to 5 km, of 200 m^2 (a survey's smallest) or more:
    pyproj rounds to ~1e-5 m^2, so slivers are compared with another
    reference below."""
    rng = np.random.default_rng(16)
    patches = _survey_patches(rng, 3000, 50, 5_000, smallest_m2=200)
    # A multipolygon's polygons, measured as the parts they are.
    pairs = shapely.multipolygons(np.reshape(patches[:1000], (500, 2)))
    compiled = geodesy.polygon_array_areas_m2(patches)
    pyproj_areas = np.array([geodesy.geodesic_area_m2(p) for p in patches])
    assert np.abs(compiled / pyproj_areas - 1).max() < 1e-7
    summed = compiled[:1000].reshape(500, 2).sum(axis=1)
    for multipolygon, area in zip(pairs, summed, strict=True):
        assert area == pytest.approx(geodesy.geodesic_area_m2(multipolygon), rel=1e-7)


def test_compiled_areas_of_slivers_keep_their_digits():
    """A few square metres, where GeographicLib's sum of large terms rounds
    (~1e-4 m^2): compared with a local equal-area projection, exact to far
    more than that at this size."""
    rng = np.random.default_rng(17)
    for patch in _survey_patches(rng, 200, 1, 20):
        lon, lat = patch.exterior.coords[0]
        local = pyproj.Transformer.from_crs(
            4326,
            pyproj.CRS.from_proj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +ellps=WGS84"),
            always_xy=True,
        )
        flat = shapely.transform(
            patch,
            lambda xy, local=local: np.column_stack(local.transform(*xy.T)),
        )
        (compiled,) = geodesy.polygon_array_areas_m2(np.array([patch]))
        assert compiled == pytest.approx(flat.area, rel=1e-7)


def test_compiled_areas_follow_geodesic_edges():
    """Long edges bend away from their chords on the equal-area map: without
    the bulge term a 20 km triangle at 45 N is off by ~1e-6."""
    triangle = shapely.Polygon([(100, 45), (100.25, 45), (100.1, 45.15)])
    (compiled,) = geodesy.polygon_array_areas_m2(np.array([triangle]))
    assert compiled == pytest.approx(geodesy.geodesic_area_m2(triangle), rel=1e-9)
