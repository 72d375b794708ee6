"""Ledger pages: thin, each parses input, calls one service or selector."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from common.forms import add_service_errors
from common.spreadsheets import csv_writer
from registry.roles import Role
from registry.selectors import has_role
from trading import services
from trading.forms import (
    CancellationForm,
    JournalFilterForm,
    RetirementForm,
    ReviewForm,
    TransferForm,
)
from trading.models import CreditBlock, TradeRequest
from trading.selectors import (
    get_account_balance,
    get_account_balances,
    get_batch,
    get_batch_whereabouts,
    get_last_ledger_check,
    list_account_certificates,
    list_account_entries,
    list_account_holdings,
    list_account_requests,
    list_cancellable_accounts,
    list_holdings,
    list_pending_requests,
    list_pending_requests_from,
    list_spendable_accounts,
    list_user_accounts,
    list_visible_entries,
)

PER_PAGE = 50


@login_required
def account_list(request):
    accounts = list(list_user_accounts(user=request.user)[:200])
    balances = get_account_balances(account_ids=[account.pk for account in accounts])
    return render(
        request,
        "trading/account_list.html",
        {"rows": [(account, balances[account.pk]) for account in accounts]},
    )


@login_required
def dashboard(request):
    """A holder's credits at a glance: holdings, pending requests, certificates,
    and a retire action per holding. Only the user's own organizations'."""
    accounts = list(list_spendable_accounts(user=request.user))
    holdings = [
        {**row, "state_label": CreditBlock.State(row["state"]).label}
        for row in list_holdings(accounts=accounts)
    ]
    return render(
        request,
        "trading/dashboard.html",
        {
            "accounts": accounts,
            "holdings": holdings,
            "pending": list(list_pending_requests_from(accounts=accounts)[:50]),
            "certificates": list(list_account_certificates(accounts=accounts)[:100]),
        },
    )


@login_required
def account_detail(request, number):
    account = list_user_accounts(user=request.user).filter(number=number).first()
    if account is None:
        raise Http404(_("No such account."))
    page = Paginator(list_account_entries(account=account), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "trading/account_detail.html",
        {
            "account": account,
            "balance": get_account_balance(account=account),
            "holdings": [
                {**row, "state_label": CreditBlock.State(row["state"]).label}
                for row in list_account_holdings(account=account)
            ],
            "requests": list_account_requests(account=account)[:50],
            "page": page,
            "can_spend": list_spendable_accounts(user=request.user)
            .filter(pk=account.pk)
            .exists(),
        },
    )


def _request_form(request, form_class, template, submit, accounts=None):
    if accounts is None:
        accounts = list_spendable_accounts(user=request.user)
    initial = {}
    if request.GET.get("account"):
        initial["from_account"] = accounts.filter(number=request.GET["account"]).first()
    vintage = request.GET.get("vintage", "")
    if vintage.isdigit() and len(vintage) == 4:
        initial["vintage"] = int(vintage)
    form = form_class(request.POST or None, accounts=accounts, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            trade_request = submit(form.cleaned_data, form)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Request #%(pk)s is waiting for a registry admin's review; "
                    "its credits are reserved."
                )
                % {"pk": trade_request.pk},
            )
            return redirect(
                "trading:account-detail", number=trade_request.from_account.number
            )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, template, {"form": form}, status=status)


@login_required
def transfer_create(request):
    def submit(data, form):
        return services.request_transfer(
            actor=request.user,
            from_account=data["from_account"],
            to_account=form.to_account,
            quantity=data["quantity"],
            price_per_tonne=data["price_per_tonne"],
            vintage=data["vintage"],
            note=data["note"],
            idempotency_key=data["idempotency_key"],
        )

    return _request_form(request, TransferForm, "trading/transfer_form.html", submit)


@login_required
def retirement_create(request):
    def submit(data, form):
        return services.request_retirement(
            actor=request.user,
            from_account=data["from_account"],
            quantity=data["quantity"],
            beneficiary=data["beneficiary"],
            beneficiary_public=data["beneficiary_public"],
            purpose=data["purpose"],
            reporting_year=data["reporting_year"],
            vintage=data["vintage"],
            note=data["note"],
            idempotency_key=data["idempotency_key"],
        )

    return _request_form(
        request, RetirementForm, "trading/retirement_form.html", submit
    )


@login_required
def cancellation_create(request):
    _admin_required(request.user)

    def submit(data, form):
        return services.request_cancellation(
            actor=request.user,
            from_account=data["from_account"],
            quantity=data["quantity"],
            vintage=data["vintage"],
            note=data["note"],
            idempotency_key=data["idempotency_key"],
        )

    return _request_form(
        request,
        CancellationForm,
        "trading/cancellation_form.html",
        submit,
        accounts=list_cancellable_accounts(),
    )


def _admin_required(user) -> None:
    if not has_role(user, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only registry admins review trade requests."))


@login_required
def review_queue(request):
    _admin_required(request.user)
    # Requests past their expiry give their credits back before the queue is
    # read (beat may be down), and are listed as expired, not waiting.
    expired = services.release_expired()
    pending = list_pending_requests()
    kind = request.GET.get("kind", "")
    if kind in TradeRequest.Kind.values:
        pending = pending.filter(kind=kind)
    pending = list(pending.order_by("created_at")[:200])
    balances = get_account_balances(
        account_ids=[item.from_account_id for item in pending]
    )
    rows = [(item, balances[item.from_account_id]) for item in pending]
    return render(
        request,
        "trading/review_queue.html",
        {
            "rows": rows,
            "expired": expired,
            "kind": kind,
            "kinds": TradeRequest.Kind.choices,
            "review_form": ReviewForm(),
            "last_check": get_last_ledger_check(),
        },
    )


@login_required
@require_POST
def review_action(request, pk, action):
    _admin_required(request.user)
    trade_request = get_object_or_404(TradeRequest, pk=pk)
    form = ReviewForm(request.POST)
    form.is_valid()
    try:
        if action == "approve":
            services.approve_request(actor=request.user, request=trade_request)
            messages.success(request, _("Request #%(pk)s settled.") % {"pk": pk})
        elif action == "reject":
            services.reject_request(
                actor=request.user,
                request=trade_request,
                reason=form.cleaned_data.get("reason", ""),
            )
            messages.success(
                request,
                _("Request #%(pk)s rejected; its credits are released.") % {"pk": pk},
            )
        else:
            raise Http404
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    return redirect("trading:review-queue")


def _journal_entries(request):
    form = JournalFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return form, list_visible_entries(user=request.user, filters=filters)


@login_required
def journal(request):
    form, entries = _journal_entries(request)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "trading/journal.html",
        {
            "form": form,
            "page": Paginator(entries, PER_PAGE).get_page(request.GET.get("page")),
            "query": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value):
        return value


@login_required
def journal_csv(request):
    _form, entries = _journal_entries(request)
    writer = csv_writer(_Echo())
    header = [
        "sequence",
        "recorded_at",
        "kind",
        "batch",
        "serial_label",
        "first_serial",
        "last_serial",
        "quantity",
        "from_account",
        "to_account",
        "price_per_tonne",
        "currency",
        "trade_request",
        "actor",
        "previous_hash",
        "entry_hash",
    ]

    def rows():
        yield "\ufeff" + writer.writerow(header)
        for entry in entries.order_by("sequence").iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    entry.sequence,
                    entry.created_at.isoformat(),
                    entry.kind,
                    entry.batch_id,
                    entry.batch.serial_label,
                    entry.first_serial,
                    entry.last_serial,
                    entry.quantity,
                    entry.from_account.number if entry.from_account else "",
                    entry.to_account.number,
                    entry.price_per_tonne if entry.price_per_tonne is not None else "",
                    entry.currency,
                    entry.trade_request_id or "",
                    entry.actor.get_username() if entry.actor else "registry",
                    entry.previous_hash,
                    entry.entry_hash,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ledger-journal.csv"'
    return response


def batch_detail(request, pk):
    """Public: a batch, what it rests on, and where its credits are now."""
    batch = get_batch(pk=pk)
    if batch is None:
        raise Http404(_("No such batch."))
    whereabouts = get_batch_whereabouts(batch=batch)
    return render(
        request,
        "trading/batch_detail.html",
        {
            "batch": batch,
            "whereabouts": whereabouts,
            "holder_quantity": batch.quantity - batch.buffer_quantity,
            "bars": [
                {
                    "key": key,
                    "label": label,
                    "tonnes": whereabouts[key],
                    "percent": whereabouts[key] * 100 / batch.quantity,
                }
                for key, label in (
                    ("held", _("Held by holders")),
                    ("buffer", _("In the buffer pool")),
                    ("listed", _("Listed on the market")),
                    ("reserved", _("Reserved by pending requests and orders")),
                    ("retired", _("Retired")),
                    ("cancelled", _("Cancelled")),
                )
            ],
        },
    )
