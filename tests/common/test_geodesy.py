"""common/geodesy.py: areas on the WGS84 ellipsoid and the TIFF signature."""

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
