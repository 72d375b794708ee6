"""The API's status for a service refusal comes from its class
(api/errors.py): 400 DomainError, 409 StateConflict, 403 NotPermitted,
whatever the code. The services raise the class that fits, and the web pages
show the same refusals as before."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common.errors import DomainError, NotPermitted, StateConflict
from registry import services as registry_services
from registry.models import Project
from tests.api.journey import API, ok
from trading import services as trading_services
from trading.models import TradeRequest


def _answer(exception):
    """What the API answers when a service raises ``exception``."""

    class Raising(APIView):
        permission_classes = [AllowAny]
        authentication_classes = []

        def post(self, request):
            raise exception

    response = Raising.as_view()(APIRequestFactory().post("/api/v1/x/"))
    return response.status_code, response.data


# Codes no list of strings has ever named: only the class can decide.
@pytest.mark.parametrize(
    "exception, status",
    [
        (DomainError("Bad.", code="unlisted_bad_input"), 400),
        (StateConflict("Not now.", code="unlisted_conflict"), 409),
        (NotPermitted("Not you.", code="unlisted_refusal"), 403),
    ],
)
def test_the_status_comes_from_the_refusals_class(exception, status):
    answered, body = _answer(exception)
    assert answered == status
    assert body == {"code": exception.code, "message": exception.messages[0]}


@pytest.mark.parametrize(
    "refusal, status", [(DomainError, 400), (StateConflict, 409), (NotPermitted, 403)]
)
def test_a_refusal_tied_to_a_field_keeps_its_status_and_field(refusal, status):
    answered, body = _answer(refusal("Too many.", code="too_many", field="quantity"))
    assert answered == status
    assert body["code"] == "too_many"
    assert body["fields"] == {
        "quantity": [{"code": "too_many", "message": "Too many."}]
    }


def test_plain_django_exceptions_keep_their_statuses():
    assert _answer(ValidationError("Bad.", code="state"))[0] == 400
    assert _answer(PermissionDenied("Not you."))[1] == {
        "code": "permission_denied",
        "message": "Not you.",
    }


# The services raise the class that fits ------------------------------------------


@pytest.mark.django_db
def test_reviewing_a_settled_request_again_is_a_state_conflict(journey, admin):
    settled = TradeRequest.objects.get(pk=journey.transfer)
    with pytest.raises(StateConflict) as refused:
        trading_services.approve_request(actor=admin, request=settled)
    assert refused.value.code == "not_pending"


@pytest.mark.django_db
def test_reviewing_ones_own_request_is_not_permitted(journey, api, admin, client):
    created = ok(
        api(admin).post(
            f"{API}/trade-requests/",
            {
                "kind": "cancellation",
                "from_account": journey.seller_account_number,
                "quantity": 1,
                "note": "Reversal after a fire.",
            },
        ),
        201,
    )
    own = TradeRequest.objects.get(pk=created["id"])
    with pytest.raises(NotPermitted) as refused:
        trading_services.approve_request(actor=admin, request=own)
    assert refused.value.code == "own_request"

    # The review page shows it as before: a message, not a 403 page.
    client.force_login(admin)
    response = client.post(
        reverse("trading:review-action", args=[own.pk, "approve"]), follow=True
    )
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert "You made this request, so another registry admin must review it." in shown
    own.refresh_from_db()
    assert own.status == TradeRequest.Status.PENDING


@pytest.mark.django_db
def test_a_step_from_the_wrong_project_state_is_a_state_conflict(journey, admin):
    registered = Project.objects.get(status=Project.Status.REGISTERED)
    with pytest.raises(StateConflict) as refused:
        registry_services.approve_project(actor=admin, project=registered)
    assert refused.value.code == "state"


@pytest.mark.django_db
def test_a_boundary_overlap_is_a_state_conflict():
    overlap = registry_services.OverlapError("Overlaps project 7.", overlaps=[])
    assert isinstance(overlap, StateConflict)
    assert _answer(overlap) == (
        409,
        {"code": "overlap", "message": "Overlaps project 7."},
    )


@pytest.mark.django_db
def test_reusing_a_trade_key_for_another_request_is_a_state_conflict(journey, staff):
    from registry.models import Account

    seller = Account.objects.get(number=journey.seller_account_number)
    buyer = Account.objects.get(number=journey.buyer_account_number)
    request = {
        "actor": staff,
        "from_account": seller,
        "to_account": buyer,
        "price_per_tonne": "80",
        "idempotency_key": "service-key-1",
    }
    trading_services.request_transfer(quantity=1, **request)
    with pytest.raises(StateConflict) as refused:
        trading_services.request_transfer(quantity=2, **request)
    assert refused.value.code == "idempotency_conflict"
    assert TradeRequest.objects.filter(idempotency_key="service-key-1").count() == 1
