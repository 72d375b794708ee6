"""Benchmark of land-use survey (三调) layers: per-class areas, side by side.

Run ``.venv/bin/python -m bench.survey``. It prints a table and rewrites the
survey section of docs/benchmarks.md. The layers are generated here and
cached in var/bench/ (never committed).

1. Synthetic layers of 250,000 and 2,000,000 patches (jittered ~0.6 ha
   squares with the survey's class codes in field DLBM, one in a thousand a
   self-intersecting "bowtie" as survey exports hold them, GeoPackage in
   EPSG:4523, the CGCS2000 Gauss-Kruger zone of Bijie) inside a county-size
   boundary drawn over ~60% of the layer: ours (``estimation.landuse``), a
   peer written with pyogrio + shapely + pyproj directly (read the boundary's
   bounding box, repair with ``make_valid``, clip with shapely's vectorised
   operations, a geodesic area per patch with ``pyproj.Geod``, ``math.fsum``
   per class), and only reading the patches (pyogrio's bounding-box read).
2. Peak memory of a process measuring the 2,000,000 patches, and the
   upload's ``describe`` of that layer, each in a fresh process.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyogrio  # noqa: E402
import pyproj  # noqa: E402
import shapely  # noqa: E402

from bench.report import write_section  # noqa: E402
from estimation import landuse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench"
SIDES = {"250,000": 500, "2,000,000": 1414}  # patches a side: 250,000 and 1,999,396
PATCH_M = 77.5  # a side: ~0.6 ha
ORIGIN = (35_520_000.0, 2_990_000.0)  # EPSG:4523 (zone 35), near Bijie
CODES = np.array(
    ["0301", "0305", "0101", "0103", "0201K", "0404", "0702", "1101", "1203"], object
)
BOWTIE_EVERY = 1000
REPEAT = 3
GEOD = pyproj.Geod(ellps="WGS84")
TARGET_PEER, TARGET_READ, TARGET_MB, TARGET_DESCRIBE_S = 1.0, 3.0, 1024, 10.0


# --- the layers -------------------------------------------------------------------


def survey_layer(side: int) -> tuple[Path, shapely.Geometry]:
    """(GeoPackage of side x side patches, boundary in lon/lat), made once."""
    path = CACHE / f"survey_{side}x{side}.gpkg"
    boundary_path = path.with_suffix(".wkt")
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.gpkg")
        partial.unlink(missing_ok=True)
        codes, wkb = _patches(side)
        pyogrio.raw.write(
            partial, geometry=wkb, field_data=[codes], fields=["DLBM"],
            geometry_type="Polygon", crs="EPSG:4523", driver="GPKG", layer="dltb",
        )  # fmt: skip
        boundary_path.write_text(_boundary(side).wkt)
        partial.rename(path)
    return path, shapely.from_wkt(boundary_path.read_text())


def _patches(side: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(16)
    k = 5  # vertices a side
    t = np.linspace(0, 1, k, endpoint=False)
    ring = np.concatenate(
        [
            np.c_[t, 0 * t],
            np.c_[1 + 0 * t, t],
            np.c_[1 - t, 1 + 0 * t],
            np.c_[0 * t, 1 - t],
        ]
    )
    count = side * side
    rows, cols = np.divmod(np.arange(count), side)
    inward = 0.5 - ring
    jitter = np.abs(rng.uniform(-0.08, 0.08, (count, len(ring), 2)))
    points = ring[None] + jitter * np.sign(inward)[None] * (np.abs(inward)[None] > 0.01)
    xy = np.empty((count, len(ring) + 1, 2))
    xy[:, :-1, 0] = ORIGIN[0] + (cols[:, None] + points[..., 0]) * PATCH_M
    xy[:, :-1, 1] = ORIGIN[1] + (rows[:, None] + points[..., 1]) * PATCH_M
    xy[:, -1] = xy[:, 0]
    shapes = shapely.polygons(xy)
    for i in range(0, count, BOWTIE_EVERY):  # self-intersecting, to be repaired
        x, y = ORIGIN[0] + cols[i] * PATCH_M, ORIGIN[1] + rows[i] * PATCH_M
        s = PATCH_M * 0.9
        shapes[i] = shapely.Polygon([(x, y), (x + s, y + s), (x + s, y), (x, y + s)])
    return rng.choice(CODES, count), shapely.to_wkb(shapes)


def _boundary(side: int) -> shapely.Polygon:
    """A wobbly disc over ~60% of the layer, in lon/lat, 4,000 vertices."""
    to_lonlat = pyproj.Transformer.from_crs(4523, 4326, always_xy=True)
    half = side * PATCH_M / 2
    angle = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    radius = half * 0.9 * (1 + 0.1 * np.sin(7 * angle) + 0.03 * np.sin(53 * angle))
    lon, lat = to_lonlat.transform(
        ORIGIN[0] + half + radius * np.cos(angle),
        ORIGIN[1] + half + radius * np.sin(angle),
    )
    return shapely.Polygon(np.c_[lon, lat])


# --- the three ways -----------------------------------------------------------------


def plane_bbox(boundary: shapely.Geometry) -> tuple[float, float, float, float]:
    to_plane = pyproj.Transformer.from_crs(4326, 4523, always_xy=True)
    dense = shapely.segmentize(boundary, 0.0005)
    return shapely.transform(
        dense, lambda xy: np.column_stack(to_plane.transform(xy[:, 0], xy[:, 1]))
    ).bounds


def read_only(path: Path, bbox) -> int:
    with pyogrio.raw.open_arrow(
        path, bbox=bbox, columns=["DLBM"], use_pyarrow=True
    ) as (_meta, reader):
        return sum(len(batch) for batch in reader)


def ours(path: Path, boundary: shapely.Geometry) -> dict[str, float]:
    return landuse.class_areas(path, boundary, class_field="DLBM").area_m2_by_code


def peer(path: Path, boundary: shapely.Geometry, bbox) -> dict[str, float]:
    """pyogrio + shapely + pyproj, written as their documentation suggests."""
    to_lonlat = pyproj.Transformer.from_crs(4523, 4326, always_xy=True)
    shapely.prepare(boundary)
    sums: dict[str, list[float]] = {}
    with pyogrio.raw.open_arrow(
        path, bbox=bbox, columns=["DLBM"], use_pyarrow=True
    ) as (meta, reader):
        for batch in reader:
            table = pa.Table.from_batches([batch])
            wkb = table.column(meta["geometry_name"] or "wkb_geometry").to_numpy()
            codes = table.column("DLBM").to_numpy(zero_copy_only=False)
            shapes = shapely.transform(
                shapely.from_wkb(wkb),
                lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])),
            )
            broken = ~shapely.is_valid(shapes)
            shapes[broken] = shapely.make_valid(shapes[broken])
            meets = shapely.intersects(boundary, shapes)
            inside = meets & shapely.contains_properly(boundary, shapes)
            cut = meets & ~inside
            shapes[cut] = shapely.intersection(shapes[cut], boundary)
            for code, shape in zip(codes[meets], shapes[meets], strict=True):
                area = abs(GEOD.geometry_area_perimeter(shape)[0])
                sums.setdefault(str(code), []).append(area)
    return {code: math.fsum(areas) for code, areas in sums.items()}


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def speed(label: str, side: int) -> dict:
    path, boundary = survey_layer(side)
    bbox = plane_bbox(boundary)
    ours(path, boundary)  # warm: numba's loops, PROJ's database, the page cache
    times: dict[str, list[float]] = {"read": [], "ours": [], "peer": []}
    for _ in range(REPEAT):  # interleaved, so a disturbance hits all three
        seconds, patches = timed(read_only, path, bbox)
        times["read"].append(seconds)
        seconds, mine = timed(ours, path, boundary)
        times["ours"].append(seconds)
        seconds, theirs = timed(peer, path, boundary, bbox)
        times["peer"].append(seconds)
    worst = max(abs(mine[code] / theirs[code] - 1) for code in theirs)
    assert mine.keys() == theirs.keys()
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "label": label, "patches": side * side, "read_patches": patches,
        "km2": sum(mine.values()) / 1e6, **median, "worst": worst,
    }  # fmt: skip


def child(what: str) -> dict:
    """Peak memory and time of ``what`` on the largest layer, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.survey", "--child", what],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def _child_main(what: str) -> None:
    path, boundary = survey_layer(SIDES["2,000,000"])
    started = time.perf_counter()
    if what == "describe":
        landuse.describe(path, class_field="DLBM")
    elif what == "measure":
        landuse.class_areas(path, boundary, class_field="DLBM")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not
    inherited from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the report ---------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(rows: list[dict], memory: dict, baseline: dict, describe: dict) -> str:
    lines = [
        "Synthetic survey layers (generated by the benchmark, cached in var/bench/): "
        "jittered ~0.6 ha patches in EPSG:4523, one in "
        f"{BOWTIE_EVERY} self-intersecting, "
        "a boundary over ~60% of the layer. Median of "
        f"{REPEAT} interleaved runs after a warm-up. The peer reads the same bounding "
        "box with pyogrio, repairs and clips with shapely's vectorised operations and "
        "measures each patch with pyproj's geodesic area; reading is pyogrio's "
        "bounding-box read alone.",
        "",
        "| layer | patches read | inside (km²) | read only | ours | peer | ours / peer "
        "| ours / read | largest class difference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        to_peer, to_read = r["ours"] / r["peer"], r["ours"] / r["read"]
        lines.append(
            f"| {r['label']} patches | {r['read_patches']:,} | {r['km2']:,.0f} | "
            f"{r['read']:.2f} s | {r['ours']:.2f} s | {r['peer']:.2f} s | "
            f"{to_peer:.2f} ({verdict(to_peer <= TARGET_PEER)}, target ≤ "
            f"{TARGET_PEER:.1f}) | {to_read:.2f} ({verdict(to_read <= TARGET_READ)}, "
            f"target ≤ {TARGET_READ:.0f}) | {r['worst']:.1e} "
            f"({verdict(r['worst'] <= 1e-5)}, target ≤ 1e-5) |"
        )
    extra = memory["peak_mb"] - baseline["peak_mb"]
    lines += [
        "",
        "Fresh processes on the 2,000,000-patch layer:",
        "",
        "| | time | peak memory (RSS) | target |",
        "|---|---:|---:|---|",
        f"| measure the per-class areas | {memory['seconds']:.2f} s | "
        f"{memory['peak_mb']:,.0f} MB ({extra:,.0f} MB above the process's imports) | "
        f"under {TARGET_MB:,} MB: {verdict(memory['peak_mb'] < TARGET_MB)} |",
        f"| upload `describe` (count and codes) | {describe['seconds']:.2f} s | "
        f"{describe['peak_mb']:,.0f} MB | under {TARGET_DESCRIBE_S:.0f} s: "
        f"{verdict(describe['seconds'] < TARGET_DESCRIBE_S)} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_main(sys.argv[2])
        return
    started = time.perf_counter()
    print("Preparing the survey layers in var/bench/ (first run only) ...", flush=True)
    for side in SIDES.values():
        survey_layer(side)
    rows = []
    for label, side in SIDES.items():
        print(f"{label} patches ...", flush=True)
        rows.append(speed(label, side))
    print("memory and describe ...", flush=True)
    memory, baseline, describe = child("measure"), child("nothing"), child("describe")
    section = report(rows, memory, baseline, describe)
    print(section)
    write_section("survey", "Land-use survey layers (三调)", section)
    print(f"Done in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
