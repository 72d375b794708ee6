"""Benchmark: a province-size raster run measured in parts by Celery workers.

A synthetic 30 m land-cover raster over Guizhou's extent (~385 M pixels,
generated once into var/bench/) and a province-size boundary (~170,000 km²).
The run goes through the registry's own path (``create_run``: the run task
plans tiles, a chord sends them to the workers, the last one adds them up)
on PostgreSQL and Redis, with a real ``celery worker`` of 1 and then 2
processes. The peer is the same measurement in one pass in this process.
Each worker count runs four times: the first also loads the engine's compiled
loops in each worker process; the median of the other three is reported.
Every run's stored table must equal the one-pass table.

Run: ``DATABASE_URL=postgis://... REDIS_URL=redis://... .venv/bin/python -m
bench.split`` (``make bench`` starts the production stack). Uses a throw-away
database and queue.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

import numpy as np  # noqa: E402
import pyproj  # noqa: E402
import shapely  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.gis.geos import GEOSGeometry  # noqa: E402
from django.core.files import File  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bench.area import RES_30M, synthetic_raster  # noqa: E402
from bench.report import write_section  # noqa: E402
from estimation.area import LandCoverRaster, warm_up  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUIZHOU = (103.6, 24.6, 109.6, 29.25)  # lon/lat box holding the province
WORKERS = (1, 2)
RUNS_EACH = 4  # the first also loads the compiled loops; the median of the rest
DEADLINE_S = 900  # a run that takes longer fails the benchmark


def province() -> shapely.Polygon:
    """A wobbly ellipse over most of the extent, 6,000 vertices."""
    west, south, east, north = GUIZHOU
    angle = np.linspace(0, 2 * np.pi, 6000, endpoint=False)
    wobble = 1 + 0.06 * np.sin(5 * angle) + 0.02 * np.sin(41 * angle)
    lon = (west + east) / 2 + (east - west) * 0.46 * wobble * np.cos(angle)
    lat = (south + north) / 2 + (north - south) * 0.46 * wobble * np.sin(angle)
    return shapely.Polygon(np.c_[lon, lat])


def one_pass(path: Path, boundary: shapely.Polygon) -> tuple[float, object]:
    """The whole boundary in one pass, with the windows a worker reads."""
    warm_up()
    with LandCoverRaster(
        path, max_window_pixels=settings.ESTIMATION_WINDOW_PIXELS
    ) as raster:
        times = []
        for _ in range(RUNS_EACH - 1):
            started = time.perf_counter()
            result = raster.class_areas(boundary)
            times.append(time.perf_counter() - started)
        return statistics.median(times), result


def _setup(path: Path):
    from estimation.models import ClassScheme
    from estimation.services.datasets import upload_landcover_dataset
    from registry import services as registry_services
    from registry import uscc
    from registry.models import Organization, User
    from registry.roles import Role
    from registry.services import add_member, grant_role

    body = "91520500MA0000001"
    bureau = registry_services.create_organization(
        name_zh="贵州省林业局",
        name_en="Guizhou Forestry Bureau",
        kind=Organization.Kind.FORESTRY_BUREAU,
        uscc=body + uscc.check_character(body),
    )
    staff = User.objects.create(username="province-staff")
    grant_role(user=staff, role=Role.BUREAU_STAFF)
    add_member(user=staff, organization=bureau)
    with path.open("rb") as handle:
        dataset = upload_landcover_dataset(
            actor=staff,
            organization=bureau,
            name_zh="贵州 30 米土地覆盖（合成）",
            name_en="Guizhou 30 m land cover (synthetic)",
            product="clcd",
            year=2020,
            scheme=ClassScheme.objects.get(slug="clcd"),
            uploaded=File(handle, name=path.name),
        )
    return staff, bureau, dataset


class Worker:
    """A `celery worker` of ``processes`` processes on the bench's queue;
    stopped (only it, by its process id) on exit."""

    def __init__(self, processes: int, queue: str, database_url: str, media: Path):
        self.processes, self.queue = processes, queue
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "false",
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(media),
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"), "-A", "config", "worker",
                "--pool", "prefork", "--concurrency", str(processes),
                "--queues", queue, "--without-gossip", "--without-mingle",
                "--loglevel", "warning", "--hostname", f"{queue}-{processes}@%h",
            ],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __enter__(self):
        from config.celery import app

        deadline, prefix = time.monotonic() + 60, f"{self.queue}-{self.processes}@"
        while time.monotonic() < deadline:
            names = [name for reply in app.control.ping(timeout=1.0) for name in reply]
            if any(name.startswith(prefix) for name in names):
                return self
        raise SystemExit("bench.split: the worker did not start within 60 s")

    def __exit__(self, *exc_info):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def timed_run(staff, bureau, dataset, boundary):
    from estimation.models import EstimationRun, Methodology
    from estimation.services.runs import create_run

    started = time.perf_counter()
    run = create_run(
        actor=staff,
        organization=bureau,
        boundary=GEOSGeometry(shapely.MultiPolygon([boundary]).wkt, srid=4326),
        dataset=dataset,
        methodology=Methodology.objects.get(is_default=True),
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    ended = (EstimationRun.Status.SUCCEEDED, EstimationRun.Status.FAILED)
    while time.perf_counter() - started < DEADLINE_S:
        run.refresh_from_db()
        if run.status in ended:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if run.status != EstimationRun.Status.SUCCEEDED:
        raise SystemExit(f"bench.split: run {run.pk} {run.status}: {run.error_message}")
    # The worker draws the run's land-cover picture after storing the table:
    # the next run starts once it is done, so it does not wait behind it.
    while not run.landcover_picture and time.perf_counter() - started < DEADLINE_S:
        time.sleep(0.1)
        run.refresh_from_db()
    return wall, run


def table(run) -> tuple:
    return (
        run.boundary_area_ha, run.covered_area_ha, run.nodata_area_ha,
        run.outside_area_ha, run.total_t_co2e_period,
        tuple(run.results.order_by("rank").values_list("ecosystem", "area_ha")),
    )  # fmt: skip


def expected_table(run, result) -> tuple:
    """The table one pass's areas give (the run's own arithmetic, in memory)."""
    from estimation.services import measurement
    from estimation.services import runs as run_services

    measured = measurement._raster_classes(result, run.dataset.scheme.nodata_codes)
    estimate, parts = run_services._estimate(run, {"current": measured})
    from common import quantities

    return (
        quantities.rounded(parts["boundary"], quantities.AREA_PLACES),
        estimate.totals.area_ha + sum(estimate.unmapped_codes_ha.values(), 0),
        quantities.rounded(parts["nodata"], quantities.AREA_PLACES),
        quantities.rounded(parts["outside"], quantities.AREA_PLACES),
        estimate.totals.sink_t_co2e_period,
        tuple((row.ecosystem, row.area_ha) for row in estimate.ecosystems),
    )


def main() -> None:
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        raise SystemExit(
            "bench.split needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL "
            "(make bench does)."
        )
    from config.celery import app

    started = time.perf_counter()
    print("Preparing the Guizhou raster in var/bench/ (first run only) ...", flush=True)
    path = synthetic_raster(RES_30M, GUIZHOU, "guizhou")
    boundary = province()
    print("one pass in this process ...", flush=True)
    alone_s, result = one_pass(path, boundary)
    setup_test_environment()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_split"
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=False
    )
    database = settings.DATABASES["default"]
    database_url = (
        f"postgis://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{connection.settings_dict['NAME']}"
    )
    media = ROOT / "var" / "bench" / "split-media"
    settings.MEDIA_ROOT = media
    queue = f"bench-split-{os.getpid()}"
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    rows = []
    try:
        staff, bureau, dataset = _setup(path)
        for processes in WORKERS:
            print(f"{processes} worker process(es) ...", flush=True)
            with Worker(processes, queue, database_url, media):
                walls = []
                for _ in range(RUNS_EACH):
                    wall, run = timed_run(staff, bureau, dataset, boundary)
                    walls.append(wall)
                    same = table(run) == expected_table(run, result)
            rows.append({
                "processes": processes, "walls": walls, "parts": run.parts_total,
                "same": same,
            })  # fmt: skip
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(media, ignore_errors=True)
    section = report(path, boundary, result, alone_s, rows)
    print(section)
    write_section("split", "A province in parts over Celery workers", section)
    print(f"Done in {time.perf_counter() - started:.0f} s.")


def report(path, boundary, result, alone_s, rows) -> str:
    with LandCoverRaster(path) as raster:
        width, height = raster._src.width, raster._src.height
    geod = pyproj.Geod(ellps="WGS84")
    km2 = abs(geod.geometry_area_perimeter(boundary)[0]) / 1e6
    one, two = (statistics.median(row["walls"][1:]) for row in rows)
    lines = [
        f"Synthetic 30 m raster over Guizhou's extent ({width:,} x {height:,} = "
        f"{width * height / 1e6:,.0f} M pixels, {path.stat().st_size / 1e6:,.0f} MB "
        f"DEFLATE); a province-size boundary of {km2:,.0f} km² "
        f"({result.pixels_read / 1e6:,.0f} M pixels read). A run through "
        "`create_run` on PostgreSQL and Redis, cut into parts of at most "
        f"{settings.ESTIMATION_PART_PIXELS / 1e6:,.0f} M pixels "
        "(`ESTIMATION_PART_PIXELS`), measured by a real `celery worker`; time "
        f"from queuing to the stored table: the median of {RUNS_EACH - 1} runs after "
        "a first one, which also loads the compiled loops in each worker process "
        "(its time in brackets); the one pass likewise.",
        "",
        "| measured by | parts | time (first run) | vs one process | "
        "table equal to one pass |",
        "|---|---:|---:|---:|---|",
        f"| one pass in this process (the peer) | 1 | {alone_s:.2f} s | 1.00 | — |",
    ]
    for row in rows:
        wall = statistics.median(row["walls"][1:])
        lines.append(
            f"| celery worker, {row['processes']} process(es) | {row['parts']} | "
            f"{wall:.2f} s ({row['walls'][0]:.2f} s) | {alone_s / wall:.2f}x | "
            f"{'yes, every stored figure' if row['same'] else 'NO'} |"
        )
    lines += [
        "",
        f"2 worker processes against 1: {one / two:.2f}x faster "
        f"({'met' if two < one else 'MISSED'}: the wall time must fall). On this "
        f"{os.cpu_count()}-core machine each process also reads on a second thread, so "
        "two processes share the cores the one process already partly used. At this "
        "size one pass over the pixels is the smaller part of a run: the rest is the "
        "run's own path (planning the tiles, the chord through Redis, each part "
        "opening the raster and preparing the boundary, adding up, storing the "
        "table), which the parts spread over the workers too.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
