"""Double-counting check with 10,000 live projects: the registry's indexed
bounding-box prefilter against a naive scan of every live boundary, in one run.

Run: ``.venv/bin/python -m bench.overlap`` (embedded SpatiaLite) or with
DATABASE_URL set for PostgreSQL/PostGIS. Uses a throw-away test database.
"""

import os
import random
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.contrib.gis.geos import MultiPolygon, Polygon  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bench.report import write_section  # noqa: E402

PROJECTS = 10_000
PROBES = 200
SIDE_DEG = 0.004  # about 400 m
WEST, SOUTH, EAST, NORTH = 103.7, 26.45, 106.6, 27.7


def _square(x, y, side=SIDE_DEG):
    ring = ((x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y))
    return MultiPolygon(Polygon(ring), srid=4326)


def _populate(rng):
    from registry.models import AdministrativeDivision, Organization, Project, User

    owner = Organization.objects.create(
        name_zh="基准", name_en="Bench", kind="project_owner", uscc="914403001922038216"
    )
    user = User.objects.create(username="bench")
    county = AdministrativeDivision.objects.filter(level="county").first()
    rows = []
    for n in range(PROJECTS):
        x = rng.uniform(WEST, EAST - SIDE_DEG)
        y = rng.uniform(SOUTH, NORTH - SIDE_DEG)
        rows.append(
            Project(
                code=f"BENCH-{n:05d}",
                name_zh="基准",
                name_en="Bench",
                owner=owner,
                county=county,
                boundary=_square(x, y),
                area_ha=16,
                boundary_source_srid=4326,
                bbox_west=x,
                bbox_south=y,
                bbox_east=x + SIDE_DEG,
                bbox_north=y + SIDE_DEG,
                crediting_start="2021-01-01",
                crediting_end="2050-12-31",
                ecosystem_focus="forest",
                status="registered",
                created_by=user,
            )
        )
    Project.objects.bulk_create(rows, batch_size=1000)


def _naive_overlaps(boundary):
    """The peer: every live boundary loaded and intersected, no prefilter."""
    from registry.boundaries import geodesic_area_ha
    from registry.models import Project

    found = []
    for project in Project.objects.filter(status__in=Project.LIVE_STATUSES):
        shared = project.boundary.intersection(boundary)
        if not shared.empty and shared.area > 0:
            found.append((project.pk, geodesic_area_ha(shared)))
    return found


def _ours(boundary):
    from registry.selectors import find_project_overlaps

    return [
        (overlap.project.pk, overlap.area_ha)
        for overlap in find_project_overlaps(boundary=boundary)
    ]


def _timed(function, probes):
    durations, results = [], []
    for probe in probes:
        start = time.perf_counter()
        results.append(sorted(function(probe)))
        durations.append(time.perf_counter() - start)
    return durations, results


def main() -> None:
    setup_test_environment()
    # Its own throw-away database, never the test suite's.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_registry"
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=False
    )
    try:
        rng = random.Random(20261123)
        _populate(rng)
        probes = [
            _square(
                rng.uniform(WEST, EAST - 0.01), rng.uniform(SOUTH, NORTH - 0.01), 0.01
            )
            for _ in range(PROBES)
        ]
        ours, our_results = _timed(_ours, probes)
        naive, naive_results = _timed(_naive_overlaps, probes[:20])
        assert our_results[:20] == naive_results, "the prefilter changed the answer"
        vendor = connection.vendor
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    median_ours = statistics.median(ours) * 1000
    p95_ours = statistics.quantiles(ours, n=20)[-1] * 1000
    median_naive = statistics.median(naive) * 1000
    text = "\n".join(
        [
            "The double-counting check (`registry.selectors.find_project_overlaps`) "
            f"for a new ~1 km² boundary against {PROJECTS:,} registered projects, "
            f"{PROBES} random probes. Peer: load and intersect every live boundary "
            "(20 probes). Both find the same overlaps (checked in the run).",
            "",
            "| database | live projects | check, median | check, p95 "
            "| naive scan, median | speed-up |",
            "|---|---|---|---|---|---|",
            f"| {vendor} | {PROJECTS:,} | {median_ours:.1f} ms | {p95_ours:.1f} ms "
            f"| {median_naive:.0f} ms | {median_naive / median_ours:.0f}x |",
        ]
    )
    print(text)
    write_section(f"overlap-{vendor}", f"Double-counting check ({vendor})", text)


if __name__ == "__main__":
    main()
