"""The market's signed-in pages: a holder's market desk (its listings, the
orders it received and placed), listing, ordering, and the seller's payment
record. Thin: each parses input and calls one service or selector
(trading.market writes, trading.selectors reads)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from common.forms import add_service_errors
from registry.roles import Role
from registry.selectors import get_user_organization_ids, has_role
from trading import market
from trading.forms import (
    DeclineForm,
    ListingForm,
    LowerListingForm,
    OrderForm,
    PaymentForm,
)
from trading.models import Listing, TradeRequest
from trading.selectors import (
    get_listing,
    list_listable_batches,
    list_seller_listings,
    list_spendable_accounts,
    list_visible_orders,
)

SHOWN = 100


def _status(form) -> int:
    return 400 if form.is_bound and form.errors else 200


def _own_listing(request, pk) -> Listing:
    """A listing of the user's own organizations (another's is not found)."""
    listing = get_listing(pk=pk)
    if listing is None or listing.account.organization_id not in (
        get_user_organization_ids(user=request.user)
    ):
        raise Http404(_("There is no such listing."))
    return listing


def _visible_order(request, pk):
    order = list_visible_orders(user=request.user).filter(pk=pk).first()
    if order is None:
        raise Http404(_("There is no such order."))
    return order


def _refused(request, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


@login_required
def market_desk(request):
    """A holder's market: its listings (with lower and withdraw), orders
    waiting for it to confirm a payment, and the orders it placed."""
    accounts = list(list_spendable_accounts(user=request.user))
    account_ids = {account.pk for account in accounts}
    return render(
        request,
        "trading/market_desk.html",
        {
            "accounts": accounts,
            "listings": list(list_seller_listings(accounts=accounts)[:SHOWN]),
            "received": list(
                list_visible_orders(user=request.user).filter(
                    listing__account__in=account_ids
                )[:SHOWN]
            ),
            "placed": list(
                list_visible_orders(user=request.user).filter(
                    trade_request__to_account__in=account_ids
                )[:SHOWN]
            ),
            "lower_form": LowerListingForm(),
        },
    )


@login_required
def listing_create(request):
    accounts = list_spendable_accounts(user=request.user)
    batches = list_listable_batches(accounts=accounts)
    initial = {}
    if request.GET.get("batch", "").isdigit():
        initial["batch"] = batches.filter(pk=request.GET["batch"]).first()
    form = ListingForm(
        request.POST or None, accounts=accounts, batches=batches, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            listing = market.create_listing(
                actor=request.user,
                account=data["account"],
                batch=data["batch"],
                quantity=data["quantity"],
                price_per_tonne=data["price_per_tonne"],
                minimum_lot=data["minimum_lot"],
                ends_on=data["ends_on"],
                note=data["note"],
                idempotency_key=data["idempotency_key"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Listing %(number)s is on the market: %(quantity)s t at "
                    "%(price)s CNY per tonne."
                )
                % {
                    "number": listing.number,
                    "quantity": f"{listing.quantity_left:,}",
                    "price": listing.price_per_tonne,
                },
            )
            return redirect("trading:market-desk")
    return render(
        request, "trading/listing_form.html", {"form": form}, status=_status(form)
    )


@login_required
@require_POST
def listing_lower(request, pk):
    listing = _own_listing(request, pk)
    form = LowerListingForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the tonnes to keep on offer."))
        return redirect("trading:market-desk")
    try:
        listing = market.lower_listing(
            actor=request.user,
            listing=listing,
            quantity_left=form.cleaned_data["quantity_left"],
        )
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            _("Listing %(number)s now offers %(left)s t.")
            % {"number": listing.number, "left": f"{listing.quantity_left:,}"},
        )
    return redirect("trading:market-desk")


@login_required
@require_POST
def listing_withdraw(request, pk):
    listing = _own_listing(request, pk)
    try:
        market.withdraw_listing(actor=request.user, listing=listing)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            _(
                "Listing %(number)s is withdrawn; its unsold credits are back in "
                "the account."
            )
            % {"number": listing.number},
        )
    return redirect("trading:market-desk")


@login_required
def order_create(request, pk):
    listing = get_listing(pk=pk)
    if listing is None:
        raise Http404(_("There is no such listing."))
    accounts = list_spendable_accounts(user=request.user)
    form = OrderForm(request.POST or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            order = market.place_order(
                actor=request.user,
                listing=listing,
                buyer_account=data["buyer_account"],
                quantity=data["quantity"],
                retire_on_delivery=data["retire_on_delivery"],
                beneficiary=data["beneficiary"],
                beneficiary_public=data["beneficiary_public"],
                purpose=data["purpose"],
                reporting_year=data["reporting_year"],
                idempotency_key=data["idempotency_key"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Order %(number)s is placed and its credits are held for you. "
                    "Pay %(amount)s CNY to the seller; the seller confirms the "
                    "payment, then a registry admin settles the order."
                )
                % {"number": order.number, "amount": f"{order.amount:,.2f}"},
            )
            return redirect("trading:order-detail", pk=order.pk)
    return render(
        request,
        "trading/order_form.html",
        {"form": form, "listing": listing, "has_account": accounts.exists()},
        status=_status(form),
    )


@login_required
def order_detail(request, pk):
    """An order, its history and, for the seller while it awaits payment,
    the payment record to confirm or the order to decline."""
    order = _visible_order(request, pk)
    organizations = get_user_organization_ids(user=request.user)
    is_seller = order.listing.account.organization_id in organizations
    is_buyer = order.trade_request.to_account.organization_id in organizations
    awaiting = order.trade_request.status == TradeRequest.Status.AWAITING_PAYMENT
    may_settle = is_seller and awaiting
    return render(
        request,
        "trading/order_detail.html",
        {
            "order": order,
            "request_": order.trade_request,
            "listing": order.listing,
            "is_seller": is_seller,
            # The beneficiary is the buyer's to name in public; the seller sees
            # it only when the buyer made it public.
            "show_beneficiary": is_buyer
            or order.beneficiary_public
            or has_role(request.user, Role.REGISTRY_ADMIN),
            "payment_form": PaymentForm(initial={"amount": order.amount})
            if may_settle
            else None,
            "decline_form": DeclineForm() if may_settle else None,
            "certificate": getattr(order.retirement_request, "certificate", None)
            if order.retirement_request_id
            else None,
        },
    )


@login_required
@require_POST
def order_confirm_payment(request, pk):
    order = _visible_order(request, pk)
    form = PaymentForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect("trading:order-detail", pk=pk)
    data = form.cleaned_data
    try:
        market.confirm_payment(
            actor=request.user,
            order=order,
            amount=data["amount"],
            paid_on=data["paid_on"],
            reference=data["reference"],
        )
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            _(
                "Payment recorded. Order %(number)s now waits for a registry "
                "admin's review."
            )
            % {"number": order.number},
        )
    return redirect("trading:order-detail", pk=pk)


@login_required
@require_POST
def order_decline(request, pk):
    order = _visible_order(request, pk)
    form = DeclineForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        market.decline_order(actor=request.user, order=order, reason=reason)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            _("Order %(number)s is declined; its credits are back on the listing.")
            % {"number": order.number},
        )
    return redirect("trading:order-detail", pk=pk)
