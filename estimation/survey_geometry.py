"""Compiled loops over many survey patches at once (pure: numpy and numba).

A Third National Land Survey layer holds up to a couple of million patches,
most of them well inside a project's boundary and valid. These loops find
those from the raw WKB and leave only the few others, near the boundary's
edge or possibly invalid, to GEOS (``estimation.landuse``):

``parse_wkb``
    WKB (ISO or extended, either byte order, Z/M dropped) of a batch of
    features into flat vertex arrays with ring, polygon and feature offsets
    (``shapely.to_ragged_array``'s layout) and each feature's bounding box.
    Polygons and multipolygons only; anything else is marked ``OTHER``.
``BoundaryGrid``
    The boundary rasterised on a grid in the layer's own coordinates: cells
    wholly inside, wholly outside, or near the boundary (every cell within
    ``margin`` of an edge). A feature whose bounding box touches only inside
    cells lies inside the boundary; only outside cells, outside. Summed-area
    tables make that two lookups per feature.
``certainly_valid``
    A conservative OGC validity check: rings closed, of four or more
    vertices, without repeated points or spikes; no two edges of the feature
    meet except neighbours at their shared vertex (with a relative tolerance,
    so near-contacts count as contacts); each hole inside its shell and in no
    other hole; no polygon of a multipolygon inside another. True means GEOS
    would call the feature valid; False only means "ask GEOS".
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numba
import numpy as np

# Feature kinds after parsing.
EMPTY, POLYGONAL, OTHER = 0, 1, 2
# Feature placement against the boundary.
OUTSIDE, INSIDE, UNDECIDED = 0, 1, 2
# Beyond this many vertices a feature's validity is left to GEOS (the check
# compares every pair of edges).
MAX_CHECKED_VERTICES = 256
# Two directions closer than this (relative cross product) count as parallel.
COLLINEAR = 1e-9
GRID_CELLS = 1024  # along the longer side of the boundary's extent
NATIVE_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True)
class Features:
    """A batch of features as flat arrays (see the module docstring)."""

    kind: np.ndarray  # int8 per feature
    x: np.ndarray
    y: np.ndarray
    ring_offsets: np.ndarray  # vertex index where each ring starts
    polygon_offsets: np.ndarray  # ring index where each polygon starts
    feature_offsets: np.ndarray  # polygon index where each feature starts
    bounds: np.ndarray  # (n, 4): xmin, ymin, xmax, ymax; NaN when empty


def parse_wkb(data: np.ndarray, offsets: np.ndarray, null: np.ndarray) -> Features:
    """Features from WKB bytes ``data[offsets[i]:offsets[i + 1]]`` (Arrow's
    binary layout); ``null`` marks features without a geometry."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    null = np.ascontiguousarray(null, dtype=np.bool_)
    kind, counts = _wkb_sizes(data, offsets, null)
    n_coords, n_rings, n_polygons = counts
    x = np.empty(n_coords)
    y = np.empty(n_coords)
    ring_offsets = np.empty(n_rings + 1, dtype=np.int64)
    polygon_offsets = np.empty(n_polygons + 1, dtype=np.int64)
    feature_offsets = np.empty(len(kind) + 1, dtype=np.int64)
    bounds = np.full((len(kind), 4), np.nan)
    _wkb_fill(
        data,
        offsets,
        kind,
        x,
        y,
        ring_offsets,
        polygon_offsets,
        feature_offsets,
        bounds,
    )
    return Features(kind, x, y, ring_offsets, polygon_offsets, feature_offsets, bounds)


@numba.njit(cache=True, nogil=True)
def _u32(data, at, little) -> int:
    b0, b1 = np.int64(data[at]), np.int64(data[at + 1])
    b2, b3 = np.int64(data[at + 2]), np.int64(data[at + 3])
    if little:
        return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
    return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3


@numba.njit(cache=True, nogil=True)
def _f64(data, at, little, scratch):
    """A double in the other byte order than this machine's."""
    for k in range(8):
        scratch[k] = data[at + 7 - k]
    return scratch.view(np.float64)[0]


@numba.njit(cache=True, nogil=True)
def _header(data, at, stop):
    """(little-endian, base type, dimensions, offset after the header), or a
    base type of -1 if the bytes run out."""
    if at + 5 > stop or data[at] > 1:
        return True, -1, 0, at
    little = data[at] == 1
    code = _u32(data, at + 1, little)
    at += 5
    dims = 2
    if code & 0x80000000:  # extended WKB flags
        dims += 1
    if code & 0x40000000:
        dims += 1
    if code & 0x20000000:  # an SRID follows
        at += 4
    code &= 0x0FFFFFFF
    base = code % 1000
    iso = code // 1000
    if iso == 1 or iso == 2:
        dims += 1
    elif iso == 3:
        dims += 2
    elif iso != 0:
        return little, -1, 0, at
    return little, base, dims, at


@numba.njit(cache=True, nogil=True)
def _polygon_size(data, at, stop, little, dims):
    """(vertices, rings, offset after) of a polygon body, or -1 vertices if
    it runs past ``stop``."""
    if at + 4 > stop:
        return -1, 0, at
    rings = _u32(data, at, little)
    at += 4
    vertices = 0
    for _ in range(rings):
        if at + 4 > stop:
            return -1, 0, at
        count = _u32(data, at, little)
        at += 4 + 8 * dims * count
        if at > stop:
            return -1, 0, at
        vertices += count
    return vertices, rings, at


@numba.njit(cache=True, nogil=True)
def _wkb_sizes(data, offsets, null):
    n = len(offsets) - 1
    kind = np.zeros(n, dtype=np.int8)
    n_coords = n_rings = n_polygons = 0
    for f in range(n):
        start, stop = offsets[f], offsets[f + 1]
        if null[f] or stop <= start:
            continue
        little, base, dims, at = _header(data, start, stop)
        if base == 3:
            vertices, rings, at = _polygon_size(data, at, stop, little, dims)
            if vertices < 0:
                kind[f] = OTHER
                continue
            kind[f] = POLYGONAL if rings > 0 else EMPTY
            if rings > 0:
                n_coords += vertices
                n_rings += rings
                n_polygons += 1
        elif base == 6:
            if at + 4 > stop:
                kind[f] = OTHER
                continue
            parts = _u32(data, at, little)
            at += 4
            vertices = rings = polygons = 0
            broken = False
            for _ in range(parts):
                little_p, base_p, dims_p, at = _header(data, at, stop)
                if base_p != 3:
                    broken = True
                    break
                v, r, at = _polygon_size(data, at, stop, little_p, dims_p)
                if v < 0:
                    broken = True
                    break
                if r > 0:
                    vertices += v
                    rings += r
                    polygons += 1
            if broken:
                kind[f] = OTHER
            elif polygons > 0:
                kind[f] = POLYGONAL
                n_coords += vertices
                n_rings += rings
                n_polygons += polygons
        else:
            kind[f] = OTHER
    return kind, (n_coords, n_rings, n_polygons)


@numba.njit(cache=True, nogil=True)
def _fill_polygon(data, at, little, dims, x, y, ring_offsets, c, r, scratch):
    rings = _u32(data, at, little)
    at += 4
    for _ in range(rings):
        count = _u32(data, at, little)
        at += 4
        ring_offsets[r] = c
        r += 1
        if little == NATIVE_LITTLE:  # the doubles as they lie
            values = data[at : at + 8 * dims * count].view(np.float64)
            x[c : c + count] = values[0::dims]
            y[c : c + count] = values[1::dims]
            at += 8 * dims * count
            c += count
            continue
        for _ in range(count):
            x[c] = _f64(data, at, little, scratch)
            y[c] = _f64(data, at + 8, little, scratch)
            at += 8 * dims
            c += 1
    return at, c, r


@numba.njit(cache=True, nogil=True)
def _wkb_fill(
    data, offsets, kind, x, y, ring_offsets, polygon_offsets, feature_offsets, bounds
):
    scratch = np.empty(8, dtype=np.uint8)
    c = r = p = 0
    for f in range(len(kind)):
        feature_offsets[f] = p
        if kind[f] != POLYGONAL:
            continue
        first = c
        little, base, dims, at = _header(data, offsets[f], offsets[f + 1])
        if base == 3:
            polygon_offsets[p] = r
            p += 1
            at, c, r = _fill_polygon(
                data, at, little, dims, x, y, ring_offsets, c, r, scratch
            )
        else:
            parts = _u32(data, at, little)
            at += 4
            for _ in range(parts):
                little_p, _base, dims_p, at = _header(data, at, offsets[f + 1])
                if _u32(data, at, little_p) == 0:  # an empty member
                    at += 4
                    continue
                polygon_offsets[p] = r
                p += 1
                at, c, r = _fill_polygon(
                    data, at, little_p, dims_p, x, y, ring_offsets, c, r, scratch
                )
        if c > first:
            bounds[f, 0] = x[first:c].min()
            bounds[f, 1] = y[first:c].min()
            bounds[f, 2] = x[first:c].max()
            bounds[f, 3] = y[first:c].max()
    feature_offsets[len(kind)] = p
    polygon_offsets[p] = r
    ring_offsets[r] = c


# The boundary on a grid -------------------------------------------------------


class BoundaryGrid:
    """Where a bounding box lies against a boundary given as closed rings in
    the layer's coordinates (see the module docstring)."""

    def __init__(self, x, y, ring_offsets, *, margin: float, cells: int = GRID_CELLS):
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        ring_offsets = np.asarray(ring_offsets, dtype=np.int64)
        extent = max(x.max() - x.min(), y.max() - y.min(), margin)
        self.cell = extent / cells * (1 + 1e-9)
        # One cell of outside all round, so that beyond the grid is outside.
        self.x0 = x.min() - self.cell - margin
        self.y0 = y.min() - self.cell - margin
        self.nx = int((x.max() + margin - self.x0) / self.cell) + 2
        self.ny = int((y.max() + margin - self.y0) / self.cell) + 2
        state = _grid_state(
            x, y, ring_offsets, self.x0, self.y0, self.cell, self.nx, self.ny, margin
        )
        self.not_inside = _summed(state != INSIDE)
        self.not_outside = _summed(state != OUTSIDE)

    def place(self, bounds: np.ndarray) -> np.ndarray:
        """OUTSIDE, INSIDE or UNDECIDED for each (xmin, ymin, xmax, ymax); an
        empty (NaN) box is OUTSIDE."""
        return _place(
            np.ascontiguousarray(bounds, dtype=np.float64),
            self.x0,
            self.y0,
            self.cell,
            self.not_inside,
            self.not_outside,
        )


def _summed(cells: np.ndarray) -> np.ndarray:
    table = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = cells.cumsum(axis=0).cumsum(axis=1)
    return table


@numba.njit(cache=True, nogil=True)
def _grid_state(x, y, ring_offsets, x0, y0, cell, nx, ny, margin):
    state = np.zeros((ny, nx), dtype=np.int8)
    # Cells within ``margin`` of an edge: edges cut into pieces no longer
    # than a cell, each marking the cells its widened box touches.
    for ring in range(len(ring_offsets) - 1):
        for i in range(ring_offsets[ring], ring_offsets[ring + 1] - 1):
            ax, ay, bx, by = x[i], y[i], x[i + 1], y[i + 1]
            pieces = int(math.hypot(bx - ax, by - ay) / cell) + 1
            for k in range(pieces):
                px0 = ax + (bx - ax) * k / pieces
                py0 = ay + (by - ay) * k / pieces
                px1 = ax + (bx - ax) * (k + 1) / pieces
                py1 = ay + (by - ay) * (k + 1) / pieces
                i0 = max(0, int((min(px0, px1) - margin - x0) / cell))
                i1 = min(nx - 1, int((max(px0, px1) + margin - x0) / cell))
                j0 = max(0, int((min(py0, py1) - margin - y0) / cell))
                j1 = min(ny - 1, int((max(py0, py1) + margin - y0) / cell))
                state[j0 : j1 + 1, i0 : i1 + 1] = UNDECIDED
    # The other cells by the even-odd rule at their centres, row by row.
    crossings = np.empty(len(x))
    for j in range(ny):
        yc = y0 + (j + 0.5) * cell
        n = 0
        for ring in range(len(ring_offsets) - 1):
            for i in range(ring_offsets[ring], ring_offsets[ring + 1] - 1):
                ay, by = y[i], y[i + 1]
                if (ay <= yc) != (by <= yc):
                    t = (yc - ay) / (by - ay)
                    crossings[n] = x[i] + t * (x[i + 1] - x[i])
                    n += 1
        row = np.sort(crossings[:n])
        k = 0
        for i in range(nx):
            xc = x0 + (i + 0.5) * cell
            while k < n and row[k] < xc:
                k += 1
            if state[j, i] != UNDECIDED:
                state[j, i] = INSIDE if k % 2 == 1 else OUTSIDE
    return state


@numba.njit(cache=True, nogil=True)
def _count(table, i0, j0, i1, j1):
    return table[j1 + 1, i1 + 1] - table[j0, i1 + 1] - table[j1 + 1, i0] + table[j0, i0]


@numba.njit(cache=True, nogil=True)
def _place(bounds, x0, y0, cell, not_inside, not_outside):
    ny, nx = not_inside.shape[0] - 1, not_inside.shape[1] - 1
    placed = np.empty(len(bounds), dtype=np.int8)
    for f in range(len(bounds)):
        xmin, ymin, xmax, ymax = bounds[f, 0], bounds[f, 1], bounds[f, 2], bounds[f, 3]
        if not (xmin <= xmax and ymin <= ymax):  # NaN: nothing to place
            placed[f] = OUTSIDE
            continue
        fi0, fi1 = (xmin - x0) / cell, (xmax - x0) / cell
        fj0, fj1 = (ymin - y0) / cell, (ymax - y0) / cell
        if fi1 < 0 or fj1 < 0 or fi0 >= nx or fj0 >= ny:
            placed[f] = OUTSIDE
            continue
        within = fi0 >= 0 and fj0 >= 0 and fi1 < nx and fj1 < ny
        i0, j0 = max(0, int(fi0)), max(0, int(fj0))
        i1, j1 = min(nx - 1, int(fi1)), min(ny - 1, int(fj1))
        if within and _count(not_inside, i0, j0, i1, j1) == 0:
            placed[f] = INSIDE
        elif _count(not_outside, i0, j0, i1, j1) == 0:
            placed[f] = OUTSIDE
        else:
            placed[f] = UNDECIDED
    return placed


# Validity ---------------------------------------------------------------------


def certainly_valid(features: Features, candidates: np.ndarray) -> np.ndarray:
    """True for each candidate feature GEOS would find valid (see the module
    docstring); False for the others and for features not asked about."""
    return _certainly_valid(
        features.x,
        features.y,
        features.ring_offsets,
        features.polygon_offsets,
        features.feature_offsets,
        np.ascontiguousarray(candidates, dtype=np.bool_),
    )


@numba.njit(cache=True, nogil=True)
def _orientation(ax, ay, bx, by, cx, cy):
    """+1 left turn, -1 right turn, 0 collinear within COLLINEAR."""
    ux, uy, vx, vy = bx - ax, by - ay, cx - ax, cy - ay
    cross = ux * vy - uy * vx
    if abs(cross) <= COLLINEAR * (abs(ux) + abs(uy)) * (abs(vx) + abs(vy)):
        return 0
    return 1 if cross > 0 else -1


@numba.njit(cache=True, nogil=True)
def _edges_meet(x, y, i, j):
    """Whether edges i->i+1 and j->j+1, whose boxes overlap, may touch or
    cross."""
    ax, ay, bx, by = x[i], y[i], x[i + 1], y[i + 1]
    cx, cy, dx, dy = x[j], y[j], x[j + 1], y[j + 1]
    o1 = _orientation(ax, ay, bx, by, cx, cy)
    o2 = _orientation(ax, ay, bx, by, dx, dy)
    o3 = _orientation(cx, cy, dx, dy, ax, ay)
    o4 = _orientation(cx, cy, dx, dy, bx, by)
    if o1 == 0 or o2 == 0 or o3 == 0 or o4 == 0:
        return True  # touching, or too close to tell
    return o1 != o2 and o3 != o4


@numba.njit(cache=True, nogil=True)
def _inside_ring(px, py, x, y, start, stop):
    inside = False
    for i in range(start, stop - 1):
        ay, by = y[i], y[i + 1]
        if (ay <= py) != (by <= py) and (
            px < x[i] + (py - ay) / (by - ay) * (x[i + 1] - x[i])
        ):
            inside = not inside
    return inside


@numba.njit(cache=True, nogil=True)
def _rings_simple(x, y, ring_offsets, r0, r1, west, east, south, north):
    """Closed rings of 4+ vertices, no repeated vertex, no spike, and no
    contact between edges other than neighbours at their shared vertex."""
    for ring in range(r0, r1):
        start, stop = ring_offsets[ring], ring_offsets[ring + 1]
        if stop - start < 4 or x[start] != x[stop - 1] or y[start] != y[stop - 1]:
            return False
        for i in range(start, stop - 1):
            if x[i] == x[i + 1] and y[i] == y[i + 1]:
                return False
            # the next edge, wrapping round the closing vertex
            k = i + 1 if i + 2 < stop else start
            ux, uy = x[i + 1] - x[i], y[i + 1] - y[i]
            vx, vy = x[k + 1] - x[k], y[k + 1] - y[k]
            if (
                _orientation(x[i], y[i], x[i + 1], y[i + 1], x[k + 1], y[k + 1]) == 0
                and ux * vx + uy * vy <= 0
            ):
                return False  # the edge doubles back on itself
    # Every pair of edges but neighbours; boxes first, widened a little so
    # that near-contacts reach the orientation tests.
    first = ring_offsets[r0]
    for ring in range(r0, r1):
        for i in range(ring_offsets[ring], ring_offsets[ring + 1] - 1):
            k = i - first
            west[k], east[k] = min(x[i], x[i + 1]), max(x[i], x[i + 1])
            south[k], north[k] = min(y[i], y[i + 1]), max(y[i], y[i + 1])
            slack = COLLINEAR * ((east[k] - west[k]) + (north[k] - south[k]))
            west[k] -= slack
            east[k] += slack
            south[k] -= slack
            north[k] += slack
    for ring in range(r0, r1):
        start, stop = ring_offsets[ring], ring_offsets[ring + 1]
        for i in range(start, stop - 1):
            ki = i - first
            for other in range(ring, r1):
                o_start, o_stop = ring_offsets[other], ring_offsets[other + 1]
                for j in range(i + 2 if other == ring else o_start, o_stop - 1):
                    kj = j - first
                    if (
                        east[kj] < west[ki]
                        or east[ki] < west[kj]
                        or north[kj] < south[ki]
                        or north[ki] < south[kj]
                    ):
                        continue
                    if other == ring and i == start and j == stop - 2:
                        continue  # the first and last edges share a vertex
                    if _edges_meet(x, y, i, j):
                        return False
    return True


@numba.njit(cache=True, nogil=True)
def _certainly_valid(x, y, ring_offsets, polygon_offsets, feature_offsets, asked):
    valid = np.zeros(len(asked), dtype=np.bool_)
    west, east = np.empty(MAX_CHECKED_VERTICES), np.empty(MAX_CHECKED_VERTICES)
    south, north = np.empty(MAX_CHECKED_VERTICES), np.empty(MAX_CHECKED_VERTICES)
    for f in range(len(asked)):
        if not asked[f]:
            continue
        p0, p1 = feature_offsets[f], feature_offsets[f + 1]
        if p1 == p0:
            continue
        r0, r1 = polygon_offsets[p0], polygon_offsets[p1]
        if ring_offsets[r1] - ring_offsets[r0] > MAX_CHECKED_VERTICES:
            continue
        if not _rings_simple(x, y, ring_offsets, r0, r1, west, east, south, north):
            continue
        # With no edges meeting, rings are nested or apart: check which.
        ok = True
        for p in range(p0, p1):
            shell = polygon_offsets[p]
            s_start, s_stop = ring_offsets[shell], ring_offsets[shell + 1]
            for hole in range(shell + 1, polygon_offsets[p + 1]):
                h = ring_offsets[hole]
                if not _inside_ring(x[h], y[h], x, y, s_start, s_stop):
                    ok = False
                for other in range(shell + 1, polygon_offsets[p + 1]):
                    o = ring_offsets[other]
                    if other != hole and _inside_ring(
                        x[h], y[h], x, y, o, ring_offsets[other + 1]
                    ):
                        ok = False
            for q in range(p0, p1):
                q_shell = polygon_offsets[q]
                if q != p and _inside_ring(
                    x[s_start],
                    y[s_start],
                    x,
                    y,
                    ring_offsets[q_shell],
                    ring_offsets[q_shell + 1],
                ):
                    ok = False  # nested, perhaps in a hole: GEOS decides
        valid[f] = ok
    return valid


# Selecting and summing --------------------------------------------------------


def select(features: Features, chosen: np.ndarray) -> Features:
    """The chosen features' polygons, compacted (same layout)."""
    chosen = np.ascontiguousarray(chosen, dtype=np.bool_)
    arrays = _select(
        features.x,
        features.y,
        features.ring_offsets,
        features.polygon_offsets,
        features.feature_offsets,
        chosen,
    )
    return Features(features.kind[chosen], *arrays, features.bounds[chosen])


@numba.njit(cache=True, nogil=True)
def _select(x, y, ring_offsets, polygon_offsets, feature_offsets, chosen):
    n_f = n_p = n_r = n_c = 0
    for f in range(len(chosen)):
        if chosen[f]:
            p0, p1 = feature_offsets[f], feature_offsets[f + 1]
            r0, r1 = polygon_offsets[p0], polygon_offsets[p1]
            n_f += 1
            n_p += p1 - p0
            n_r += r1 - r0
            n_c += ring_offsets[r1] - ring_offsets[r0]
    sx, sy = np.empty(n_c), np.empty(n_c)
    s_rings = np.empty(n_r + 1, dtype=np.int64)
    s_polygons = np.empty(n_p + 1, dtype=np.int64)
    s_features = np.empty(n_f + 1, dtype=np.int64)
    f_out = p_out = r_out = c_out = 0
    for f in range(len(chosen)):
        if not chosen[f]:
            continue
        s_features[f_out] = p_out
        f_out += 1
        for p in range(feature_offsets[f], feature_offsets[f + 1]):
            s_polygons[p_out] = r_out
            p_out += 1
            for r in range(polygon_offsets[p], polygon_offsets[p + 1]):
                s_rings[r_out] = c_out
                r_out += 1
                for c in range(ring_offsets[r], ring_offsets[r + 1]):
                    sx[c_out] = x[c]
                    sy[c_out] = y[c]
                    c_out += 1
    s_features[n_f] = n_p
    s_polygons[n_p] = n_r
    s_rings[n_r] = n_c
    return sx, sy, s_rings, s_polygons, s_features


def polygon_features(features: Features) -> np.ndarray:
    """The feature index of each polygon."""
    return np.repeat(np.arange(len(features.kind)), np.diff(features.feature_offsets))


@numba.njit(cache=True, nogil=True)
def add_square_millimetres(areas_m2, classes, sums) -> None:
    """Add each area, rounded to whole mm^2, to its class's integer sum: exact,
    so the order of the features cannot change a total."""
    for i in range(len(areas_m2)):
        sums[classes[i]] += np.int64(round(areas_m2[i] * 1e6))


# Moving vertices to lon/lat ---------------------------------------------------


class InterpolatedTransform:
    """A projection's inverse on a window, as cubic interpolation between nodes
    ``spacing`` apart that the exact transformation (``exact``, pyproj) placed.

    The inverse of a Gauss-Kruger projection is smooth on the scale of the
    earth's radius R: cubic interpolation errs by ~(spacing^4 / R^3) in
    position and (spacing / R)^3 in scale, about 1e-9 m and 1e-12 at 2 km, so
    areas come out as with the exact transformation, at a tenth of its cost.
    ``usable`` is False when checks at points between the nodes disagree with
    ``exact`` by more than ``tolerance`` degrees; vertices beyond the window
    are always moved by ``exact``."""

    def __init__(self, exact, window, *, spacing: float, tolerance: float = 1e-10):
        self.exact = exact
        xmin, ymin, xmax, ymax = window
        self.spacing = spacing
        self.x0 = xmin - 2 * spacing
        self.y0 = ymin - 2 * spacing
        nx = int((xmax - self.x0) / spacing) + 4
        ny = int((ymax - self.y0) / spacing) + 4
        gx = self.x0 + spacing * np.arange(nx)
        gy = self.y0 + spacing * np.arange(ny)
        xx, yy = np.meshgrid(gx, gy)
        lon, lat = exact(xx.ravel(), yy.ravel())
        self.lon = np.ascontiguousarray(np.reshape(lon, (ny, nx)))
        self.lat = np.ascontiguousarray(np.reshape(lat, (ny, nx)))
        rng = np.random.default_rng(0)
        px = rng.uniform(xmin, xmax, 2000)
        py = rng.uniform(ymin, ymax, 2000)
        want_lon, want_lat = exact(px, py)
        got_lon, got_lat = self._interpolated(px, py)[:2]
        error = max(np.abs(got_lon - want_lon).max(), np.abs(got_lat - want_lat).max())
        self.usable = bool(error <= tolerance)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.usable:
            return self.exact(x, y)
        lon, lat, beyond = self._interpolated(x, y)
        if beyond.any():
            lon[beyond], lat[beyond] = self.exact(x[beyond], y[beyond])
        return lon, lat

    def _interpolated(self, x, y):
        return _interpolate(
            np.ascontiguousarray(x, dtype=np.float64),
            np.ascontiguousarray(y, dtype=np.float64),
            self.x0,
            self.y0,
            self.spacing,
            self.lon,
            self.lat,
        )


@numba.njit(cache=True, nogil=True)
def _cubic_weights(t, w):
    """Lagrange weights of the nodes at -1, 0, 1, 2 for a point at t in [0, 1)."""
    w[0] = -t * (t - 1) * (t - 2) / 6
    w[1] = (t + 1) * (t - 1) * (t - 2) / 2
    w[2] = -(t + 1) * t * (t - 2) / 2
    w[3] = (t + 1) * t * (t - 1) / 6


@numba.njit(cache=True, nogil=True)
def _interpolate(x, y, x0, y0, spacing, lon_nodes, lat_nodes):
    ny, nx = lon_nodes.shape
    lon = np.empty(len(x))
    lat = np.empty(len(x))
    beyond = np.zeros(len(x), dtype=np.bool_)
    wx = np.empty(4)
    wy = np.empty(4)
    for k in range(len(x)):
        fx = (x[k] - x0) / spacing
        fy = (y[k] - y0) / spacing
        if not (1 <= fx < nx - 2 and 1 <= fy < ny - 2):
            beyond[k] = True
            lon[k] = lat[k] = np.nan
            continue
        i, j = int(fx), int(fy)
        _cubic_weights(fx - i, wx)
        _cubic_weights(fy - j, wy)
        # Relative to a node, so that the weights do not scale 100 degrees.
        base_lon, base_lat = lon_nodes[j, i], lat_nodes[j, i]
        sum_lon = sum_lat = 0.0
        for b in range(4):
            row_lon = row_lat = 0.0
            for a in range(4):
                row_lon += wx[a] * (lon_nodes[j - 1 + b, i - 1 + a] - base_lon)
                row_lat += wx[a] * (lat_nodes[j - 1 + b, i - 1 + a] - base_lat)
            sum_lon += wy[b] * row_lon
            sum_lat += wy[b] * row_lat
        lon[k] = base_lon + sum_lon
        lat[k] = base_lat + sum_lat
    return lon, lat, beyond
