"""A picture of a run's land cover, clipped to its boundary, for the web map:
the raster resampled (nearest class) onto a lon/lat grid over the boundary's
bounding box, coloured by ecosystem, transparent outside the boundary. Drawn by
the run's task (``estimation.services.runs.store_landcover_picture``), never in
a request: it reads the whole land-cover file."""

import numpy as np
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import reproject

from estimation.calculations import ecosystem_of
from estimation.selectors import scheme_lookup

MAX_SIDE_PX = 1024
# The map's colours, shared by the pictures and the pages' legends.
ECOSYSTEM_COLOURS = {
    "forest": "#2f7d32",
    "farmland": "#e0b64a",
    "grassland": "#9ccc65",
    "wetland": "#26a69a",
    "water": "#1e88e5",
    "desert": "#bcaaa4",
    "built_up": "#e53935",
    "other": "#9e9e9e",
}
LONLAT = CRS.from_epsg(4326)


def _rgba(hex_colour: str) -> tuple[int, int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), 220


def render_landcover_png(run, *, colours: dict[str, str]) -> bytes:
    boundary = shapely.from_wkb(bytes(run.boundary.wkb))
    west, south, east, north = boundary.bounds
    with rasterio.open(run.dataset.file.path) as src:
        # About one output pixel per source pixel, at most MAX_SIDE_PX a side.
        native = abs(src.res[0]) if src.crs.is_geographic else abs(src.res[0]) / 111_000
        width = int(min(MAX_SIDE_PX, max(64, (east - west) / native)))
        height = int(min(MAX_SIDE_PX, max(64, (north - south) / native)))
        transform = from_bounds(west, south, east, north, width, height)
        classes = np.full((height, width), -1, dtype=np.int32)
        reproject(
            source=rasterio.band(src, 1),
            destination=classes,
            dst_transform=transform,
            dst_crs=LONLAT,
            dst_nodata=-1,
            resampling=Resampling.nearest,
        )
    mapping = scheme_lookup(run.dataset.scheme)
    image = np.zeros((4, height, width), dtype=np.uint8)
    for code in np.unique(classes):
        ecosystem = ecosystem_of(str(int(code)), mapping) if code >= 0 else None
        if ecosystem is None:
            continue
        where = classes == code
        for band, value in enumerate(_rgba(colours[ecosystem])):
            image[band][where] = value
    outside = geometry_mask([boundary], out_shape=(height, width), transform=transform)
    image[3][outside] = 0
    with MemoryFile() as memory:
        with memory.open(
            driver="PNG", width=width, height=height, count=4, dtype="uint8"
        ) as png:
            png.write(image)
        return memory.read()
