from django.conf import settings


def map_settings(request) -> dict:
    """The base-map settings every Leaflet map reads (``map_settings|json_script``)."""
    return {
        "map_settings": {
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        }
    }
