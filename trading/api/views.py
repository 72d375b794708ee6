"""Trading endpoints: accounts and holdings, batches, trade requests and their
review, the journal. Thin: parse input, call one service or selector."""

import uuid

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.schema import ErrorSerializer
from api.viewsets import ApiViewSet, query_parameters
from registry.models import Account
from trading import services
from trading.api.serializers import (
    AccountSerializer,
    BatchDetailSerializer,
    BatchSerializer,
    HoldingSerializer,
    LedgerEntrySerializer,
    LedgerFilterSerializer,
    ReviewSerializer,
    TradeRequestCreateSerializer,
    TradeRequestSerializer,
)
from trading.models import TradeRequest
from trading.selectors import (
    get_account_balances,
    get_batch,
    get_batch_whereabouts,
    list_account_holdings,
    list_batches,
    list_spendable_accounts,
    list_user_accounts,
    list_visible_entries,
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
    omitted) is also the request's own key in the journal."""

    serializer_class = TradeRequestSerializer

    def get_queryset(self):
        return list_visible_requests(user=self.request.user)

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
