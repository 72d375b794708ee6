"""``{% project_listings project as market %}``: a project's open listings
for its page (templates/registry/project_detail.html). A tag, because the
registry's views may not read the trading app (tests/test_layering.py);
the project-level template may, as it already links trading's batch pages."""

from django import template

from trading.selectors import list_project_listings

register = template.Library()

# A project page lists at most this many; the market filtered to the project
# has them all.
PROJECT_LISTINGS_SHOWN = 20


@register.simple_tag
def project_listings(project) -> dict:
    """{"listings": up to PROJECT_LISTINGS_SHOWN, cheapest first; "more":
    whether the project has more}. One query; none for a project without a
    code (a draft never saved)."""
    if not project.code:
        return {"listings": [], "more": False}
    listings = list(
        list_project_listings(project=project)[: PROJECT_LISTINGS_SHOWN + 1]
    )
    return {
        "listings": listings[:PROJECT_LISTINGS_SHOWN],
        "more": len(listings) > PROJECT_LISTINGS_SHOWN,
    }
