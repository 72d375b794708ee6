"""The published journal heads, no sign-in: the list with the registry's public
key, each head as JSON, and a form where anyone checks a head they kept against
today's journal (``trading.verification.check_anchor``). Thin, like
``public.views``."""

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from public import selectors
from public.forms import HeadCheckForm
from trading.anchors import public_key_info, signed_by_registry, trusted_public_keys
from trading.verification import check_anchor

PER_PAGE = 50


@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def journal_heads(request):
    form = HeadCheckForm(request.POST or None, request.FILES or None)
    check, status = None, 200
    if request.method == "POST":
        if form.is_valid():
            try:
                check = check_anchor(form.cleaned_data["head"], reuse_walk=True)
            except ValidationError as error:
                form.add_error(None, error.messages)
        if form.errors:
            status = 400
    trusted = trusted_public_keys()
    page = Paginator(selectors.list_published_heads(), PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [
        {"anchor": anchor, "signed": signed_by_registry(anchor, trusted)}
        for anchor in page.object_list
    ]
    return render(
        request,
        "public/journal_heads.html",
        {
            "key": public_key_info(),
            "page": page,
            "rows": rows,
            "form": form,
            "check": check,
        },
        status=status,
    )


@require_GET
def journal_head_json(request, pk: int | None = None):
    """One published head (or the latest) exactly as published, to keep."""
    anchor = selectors.get_published_head(pk=pk)
    if anchor is None:
        return JsonResponse(
            {
                "code": "not_found",
                "message": _("No journal head with this number was published."),
            },
            status=404,
        )
    response = JsonResponse(anchor.document(), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = (
        f'attachment; filename="journal-head-{anchor.sequence}.json"'
    )
    return response
