"""Trading endpoints: accounts and holdings, batches, trade requests and their
review, the journal, and the market (listings and orders). Thin: parse input,
call one service or selector."""

import uuid

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from api.schema import ErrorSerializer
from api.viewsets import ApiViewSet, query_parameters
from registry.models import Account
from registry.selectors import list_counties
from trading import market, services
from trading.api.serializers import (
    AccountSerializer,
    BatchDetailSerializer,
    BatchSerializer,
    DeclineSerializer,
    HoldingSerializer,
    LedgerEntrySerializer,
    LedgerFilterSerializer,
    ListingCreateSerializer,
    ListingFilterSerializer,
    ListingLowerSerializer,
    ListingSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PaymentConfirmationSerializer,
    ReviewSerializer,
    TradeRequestCreateSerializer,
    TradeRequestSerializer,
)
from trading.models import Listing, Order, TradeRequest
from trading.selectors import (
    filter_listings,
    get_account_balances,
    get_batch,
    get_batch_whereabouts,
    get_listing,
    list_account_holdings,
    list_batches,
    list_open_listings,
    list_seller_listings,
    list_spendable_accounts,
    list_user_accounts,
    list_visible_entries,
    list_visible_orders,
    list_visible_requests,
)


class AccountViewSet(ApiViewSet):
    """The caller's organizations' accounts with their balances (all accounts
    for registry admins)."""

    serializer_class = AccountSerializer

    def get_queryset(self):
        return list_user_accounts(user=self.request.user)

    def _account(self) -> Account:
        account = self.get_queryset().filter(pk=self.lookup_value()).first()
        if account is None:
            raise exceptions.NotFound()
        return account

    def _serialize(self, accounts, many):
        ids = [account.pk for account in (accounts if many else [accounts])]
        return AccountSerializer(
            accounts,
            many=many,
            context={"balances": get_account_balances(account_ids=ids)},
        ).data

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self._serialize(page, many=True))

    def retrieve(self, request, pk=None):
        return Response(self._serialize(self._account(), many=False))

    @extend_schema(responses=HoldingSerializer(many=True))
    @action(detail=True, methods=["get"])
    def holdings(self, request, pk=None):
        """Per batch: the active and reserved tonnes the account holds."""
        holdings = list_account_holdings(account=self._account())
        page = self.paginate_queryset(holdings)
        return self.get_paginated_response(HoldingSerializer(page, many=True).data)

    @extend_schema(responses=ListingSerializer(many=True))
    @action(detail=True, methods=["get"])
    def listings(self, request, pk=None):
        """Every listing of the account on the market, open and closed (open
        first, then the newest): the seller's own view of its offers."""
        listings = list_seller_listings(accounts=[self._account()])
        page = self.paginate_queryset(listings)
        return self.get_paginated_response(ListingSerializer(page, many=True).data)


class BatchViewSet(ApiViewSet):
    """Public: issued credit batches, and where each one's credits are now."""

    serializer_class = BatchSerializer
    permission_classes = [AllowAny]

    def get_queryset(self):
        return list_batches()

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses=BatchDetailSerializer)
    def retrieve(self, request, pk=None):
        batch = get_batch(pk=int(self.lookup_value()))
        if batch is None:
            raise exceptions.NotFound()
        return Response(
            BatchDetailSerializer(
                batch, context={"whereabouts": get_batch_whereabouts(batch=batch)}
            ).data
        )


# Maker-checker: the review is refused, not the input (so 403, not 400).
OWN_REQUEST_RESPONSE = OpenApiResponse(
    ErrorSerializer,
    description=(
        "Not a registry admin, or `own_request`: the caller made this request, "
        "so another registry admin must review it."
    ),
)


@extend_schema_view(
    create=extend_schema(
        request=TradeRequestCreateSerializer,
        responses={201: TradeRequestSerializer},
    )
)
class TradeRequestViewSet(ApiViewSet):
    """Transfers, retirements and cancellations. Creating one reserves its
    credits until a registry admin other than its initiator approves (it
    settles) or rejects it. The Idempotency-Key header (a fresh key when
    omitted) is also the request's own key in the journal. A market order's
    transfer (``order``) is reviewed here too, once its seller has confirmed
    the payment (approving it earlier is 409 ``awaiting_payment``)."""

    serializer_class = TradeRequestSerializer

    def get_queryset(self):
        # A market order's transfer shows its order beside it (one join).
        return list_visible_requests(user=self.request.user).select_related(
            "order__listing", "order__payment_confirmed_by"
        )

    def _request(self) -> TradeRequest:
        found = self.get_queryset().filter(pk=self.lookup_value()).first()
        if found is None:
            raise exceptions.NotFound()
        return found

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._request()).data)

    def _respond(self, trade_request, status_code=status.HTTP_200_OK):
        found = self.get_queryset().get(pk=trade_request.pk)
        return Response(self.get_serializer(found).data, status=status_code)

    def create(self, request):
        serializer = TradeRequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        kind = data["kind"]
        # Credits leave only the caller's own holding accounts (all accounts for
        # the registry admin's cancellations); the service checks the rest.
        accounts = (
            list_user_accounts(user=user)
            if kind == TradeRequest.Kind.CANCELLATION
            else list_spendable_accounts(user=user)
        )
        from_account = _account_by_number(
            accounts, data["from_account"], "from_account"
        )
        batch = None
        if data.get("batch"):
            batch = list_batches().filter(pk=data["batch"]).first()
            if batch is None:
                raise _field_error("batch", _("There is no such batch."))
        common = {
            "actor": user,
            "from_account": from_account,
            "quantity": data["quantity"],
            "idempotency_key": self.idempotency_key or uuid.uuid4().hex,
            "batch": batch,
            "vintage": data.get("vintage"),
            "note": data.get("note", ""),
        }
        if kind == TradeRequest.Kind.TRANSFER:
            trade_request = services.request_transfer(
                to_account=_account_by_number(
                    Account.objects.all(), data["to_account"], "to_account"
                ),
                price_per_tonne=data["price_per_tonne"],
                **common,
            )
        elif kind == TradeRequest.Kind.RETIREMENT:
            trade_request = services.request_retirement(
                beneficiary=data.get("beneficiary", ""),
                beneficiary_public=data["beneficiary_public"],
                purpose=data.get("purpose", ""),
                reporting_year=data["reporting_year"],
                **common,
            )
        else:
            trade_request = services.request_cancellation(**common)
        return self._respond(trade_request, status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: TradeRequestSerializer, 403: OWN_REQUEST_RESPONSE},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Settle the request (a registry admin who did not make it; its
        initiator gets 403 ``own_request``)."""
        trade_request = services.approve_request(
            actor=request.user, request=self._request()
        )
        return self._respond(trade_request)

    @extend_schema(
        request=ReviewSerializer,
        responses={200: TradeRequestSerializer, 403: OWN_REQUEST_RESPONSE},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Refuse the request with a reason; its credits are released."""
        trade_request = self._request()
        serializer = ReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        trade_request = services.reject_request(
            actor=request.user,
            request=trade_request,
            reason=serializer.validated_data.get("reason", ""),
        )
        return self._respond(trade_request)


def _field_error(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError(
        {field: [exceptions.ErrorDetail(message, code="does_not_exist")]}
    )


def _account_by_number(accounts, number: str, field: str) -> Account:
    account = accounts.filter(number=number.strip().upper()).first()
    if account is None:
        raise _field_error(
            field,
            _("There is no account %(number)s that you may use here.")
            % {"number": number.strip().upper()},
        )
    return account


@extend_schema_view(list=extend_schema(parameters=[LedgerFilterSerializer]))
class LedgerEntryViewSet(ApiViewSet):
    """The append-only journal: registry admins see every entry, holders the
    entries of their organizations' accounts. Filter by kind, account number,
    batch and dates (since/until, inclusive)."""

    serializer_class = LedgerEntrySerializer
    lookup_field = "sequence"

    def get_queryset(self):
        filters = query_parameters(self.request, LedgerFilterSerializer)
        return list_visible_entries(user=self.request.user, filters=filters)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, sequence=None):
        entry = (
            list_visible_entries(user=request.user, filters={})
            .filter(sequence=self.lookup_value())
            .first()
        )
        if entry is None:
            raise exceptions.NotFound()
        return Response(self.get_serializer(entry).data)


# The market ----------------------------------------------------------------------


def _new_key(view) -> str:
    """The request's Idempotency-Key, or a fresh one: also the object's own key."""
    return view.idempotency_key or uuid.uuid4().hex


@extend_schema_view(
    list=extend_schema(parameters=[ListingFilterSerializer]),
    create=extend_schema(
        request=ListingCreateSerializer, responses={201: ListingSerializer}
    ),
)
class ListingViewSet(ApiViewSet):
    """The market. Public: the open listings (filtered and sorted) and any
    listing by its id, open or closed. Signed in: a holder lists credits from
    its organization's holding account (they are set aside at once), lowers
    or withdraws its listings; unsold credits go back to the account. A
    seller's own listings, closed ones too: ``accounts/{id}/listings/``."""

    serializer_class = ListingSerializer

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_queryset(self):
        filters = query_parameters(self.request, ListingFilterSerializer)
        county = filters.pop("county", None)
        if county is not None:
            # The county by its division code; an unknown code matches nothing.
            filters["county"] = list_counties().filter(adcode=county).values("pk")[:1]
        filters["sort"] = filters.pop("ordering", "price")
        return filter_listings(list_open_listings(), **filters)

    def _listing(self) -> Listing:
        listing = get_listing(pk=int(self.lookup_value()))
        if listing is None:
            raise exceptions.NotFound()
        return listing

    def _respond(self, listing: Listing, status_code=status.HTTP_200_OK):
        return Response(
            self.get_serializer(get_listing(pk=listing.pk)).data, status=status_code
        )

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._listing()).data)

    def create(self, request):
        serializer = ListingCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = _account_by_number(
            list_spendable_accounts(user=request.user), data["account"], "account"
        )
        batch = list_batches().filter(pk=data["batch"]).first()
        if batch is None:
            raise _field_error("batch", _("There is no such batch."))
        listing = market.create_listing(
            actor=request.user,
            account=account,
            batch=batch,
            quantity=data["quantity"],
            price_per_tonne=data["price_per_tonne"],
            minimum_lot=data["minimum_lot"],
            ends_on=data["ends_on"],
            note=data["note"],
            idempotency_key=_new_key(self),
        )
        return self._respond(listing, status.HTTP_201_CREATED)

    @extend_schema(request=ListingLowerSerializer, responses=ListingSerializer)
    @action(detail=True, methods=["post"])
    def lower(self, request, pk=None):
        """Offer less: keep ``quantity_left`` tonnes (fewer than are left) on
        the market; the rest go back to the seller (its organization only)."""
        listing = self._listing()
        serializer = ListingLowerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        listing = market.lower_listing(
            actor=request.user,
            listing=listing,
            quantity_left=serializer.validated_data["quantity_left"],
        )
        return self._respond(listing)

    @extend_schema(request=None, responses=ListingSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Take the listing off the market; what is unsold goes back to the
        seller (its organization only). Orders already placed go on."""
        listing = market.withdraw_listing(actor=request.user, listing=self._listing())
        return self._respond(listing)


@extend_schema_view(
    create=extend_schema(
        request=OrderCreateSerializer, responses={201: OrderSerializer}
    ),
)
class OrderViewSet(ApiViewSet):
    """Orders from listings: the buyer's and the seller's (registry admins see
    all). Placing one sets its credits aside for a transfer awaiting the
    payment, which the buyer makes outside the registry; the seller confirms
    it (the order then waits for a registry admin's review on
    ``trade-requests/{trade_request}/``) or declines the order (its credits
    return to the listing)."""

    serializer_class = OrderSerializer

    def get_queryset(self):
        return list_visible_orders(user=self.request.user)

    def _order(self) -> Order:
        found = self.get_queryset().filter(pk=self.lookup_value()).first()
        if found is None:
            raise exceptions.NotFound()
        return found

    def _respond(self, order: Order, status_code=status.HTTP_200_OK):
        found = self.get_queryset().get(pk=order.pk)
        return Response(self.get_serializer(found).data, status=status_code)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._order()).data)

    def create(self, request):
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        listing = get_listing(pk=data["listing"])
        if listing is None:
            raise _field_error("listing", _("There is no such listing."))
        buyer_account = _account_by_number(
            list_spendable_accounts(user=request.user),
            data["buyer_account"],
            "buyer_account",
        )
        order = market.place_order(
            actor=request.user,
            listing=listing,
            buyer_account=buyer_account,
            quantity=data["quantity"],
            retire_on_delivery=data["retire_on_delivery"],
            beneficiary=data["beneficiary"],
            beneficiary_public=data["beneficiary_public"],
            purpose=data.get("purpose", ""),
            reporting_year=data.get("reporting_year"),
            idempotency_key=_new_key(self),
        )
        return self._respond(order, status.HTTP_201_CREATED)

    @extend_schema(request=PaymentConfirmationSerializer, responses=OrderSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-payment")
    def confirm_payment(self, request, pk=None):
        """The seller records that the full amount arrived; the order then
        waits for a registry admin's review. The same confirmation again
        changes nothing."""
        order = self._order()
        serializer = PaymentConfirmationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = market.confirm_payment(
            actor=request.user, order=order, **serializer.validated_data
        )
        return self._respond(order)

    @extend_schema(request=DeclineSerializer, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        """The seller refuses an order awaiting payment, with a reason the
        buyer sees; its credits return to the listing."""
        order = self._order()
        serializer = DeclineSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = market.decline_order(
            actor=request.user,
            order=order,
            reason=serializer.validated_data["reason"],
        )
        return self._respond(order)
