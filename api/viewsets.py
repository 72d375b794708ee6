"""What every API view set shares: objects from the app's selectors, JSON 404s
for malformed ids, idempotent mutations and strictly read query parameters."""

import re

from django.utils.translation import gettext as _
from rest_framework import exceptions, viewsets

from api.idempotency import IdempotentMixin

INTEGER_ID = re.compile(r"^[0-9]{1,18}$")


class ApiViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Base of the API's view sets. Objects come from the app's selectors (so
    users see exactly what the web pages show them); a malformed id is a JSON
    404 like a missing one."""

    integer_lookup = True
    lookup_value_regex = "[^/]+"

    def lookup_value(self) -> str:
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        if self.integer_lookup and not INTEGER_ID.match(value):
            raise exceptions.NotFound()
        return value


def query_parameters(request, serializer_class) -> dict:
    """The query parameters ``serializer_class`` declares, read as strictly as
    the schema states them: an empty value is an error, not "no filter", and a
    parameter given twice is refused rather than one of its values guessed."""
    query = request.query_params
    names = [name for name in serializer_class().fields if name in query]
    repeated = [name for name in names if len(query.getlist(name)) > 1]
    if repeated:
        raise exceptions.ValidationError(
            {
                name: [
                    exceptions.ErrorDetail(
                        _("Give this parameter once."), code="repeated_parameter"
                    )
                ]
                for name in repeated
            }
        )
    # A plain dict, not the QueryDict: DRF reads a blank value in form-like
    # data as "not given", which would accept ``?since=`` silently.
    serializer = serializer_class(data={name: query[name] for name in names})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
