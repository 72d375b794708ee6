"""Page-numbered lists whose ``page`` and ``page_size`` are read as strictly as
the schema states them."""

import re

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

MAX_PAGE_SIZE = 200
# Far beyond any list's last page; a bound keeps the number an integer.
MAX_PAGE = 999_999_999
WHOLE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")


class StrictPageMixin:
    """``page`` and ``page_size`` as the schema states them: a whole number
    from 1 (``page_size`` at most ``MAX_PAGE_SIZE``), given once; anything else
    is a 400 with code ``invalid_page`` or ``invalid_page_size`` instead of
    being quietly replaced by a default. A page past the last one is a 404."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def _whole_number(self, request, name: str, maximum: int, message: str):
        values = request.query_params.getlist(name)
        if not values:
            return None
        if len(values) == 1 and WHOLE_NUMBER.fullmatch(values[0]):
            number = int(values[0])
            if number <= maximum:
                return number
        raise exceptions.ValidationError(
            {name: [exceptions.ErrorDetail(message, code=f"invalid_{name}")]}
        )

    def get_page_size(self, request):
        size = self._whole_number(
            request,
            self.page_size_query_param,
            self.max_page_size,
            _("page_size is a whole number from 1 to %(maximum)s.")
            % {"maximum": self.max_page_size},
        )
        return self.page_size if size is None else size

    def get_page_number(self, request, paginator):
        number = self._whole_number(
            request,
            self.page_query_param,
            MAX_PAGE,
            _("page is a whole number, 1 or more."),
        )
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1, "maximum": MAX_PAGE},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


class Pagination(StrictPageMixin, PageNumberPagination):
    pass
