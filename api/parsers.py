"""JSON bodies, refused early when nested absurdly deep."""

from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers

# Deeper JSON than any request needs (a GeoJSON boundary is under 10 levels);
# refusing it early keeps the parser and everything after it out of recursion
# limits.
MAX_JSON_DEPTH = 64


def _nested_too_deep(data, limit: int) -> bool:
    """Whether ``data`` nests lists and objects more than ``limit`` deep,
    found without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep() -> exceptions.ParseError:
    return exceptions.ParseError(
        exceptions.ErrorDetail(
            _("The JSON is nested more than %(depth)s levels deep.")
            % {"depth": MAX_JSON_DEPTH},
            code="nesting_too_deep",
        )
    )


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing absurdly deep nesting with a 400 instead of
    failing with a RecursionError (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        if _nested_too_deep(data, MAX_JSON_DEPTH):
            raise _too_deep()
        return data
