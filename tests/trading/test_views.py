import pytest
from django.urls import reverse

from registry.roles import Role
from trading.models import LedgerEntry, TradeRequest
from trading.selectors import get_account_balance

pytestmark = pytest.mark.django_db


def _transfer_form(
    client, seller_account, buyer_account, key="form-key-1", quantity="100"
):
    return client.post(
        reverse("trading:transfer-create"),
        {
            "from_account": seller_account.pk,
            "to_account_number": buyer_account.number.lower(),
            "quantity": quantity,
            "price_per_tonne": "88.50",
            "idempotency_key": key,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_a_holder_requests_a_transfer_and_a_double_submit_acts_once(
    client, issue, seller, seller_account, buyer_account
):
    issue()
    client.force_login(seller)
    form = client.get(reverse("trading:transfer-create"))
    assert 'name="idempotency_key"' in form.content.decode()
    assert _transfer_form(client, seller_account, buyer_account).status_code == 302
    assert _transfer_form(client, seller_account, buyer_account).status_code == 302
    assert TradeRequest.objects.count() == 1
    assert get_account_balance(account=seller_account)["reserved"] == 100
    page = client.get(
        reverse("trading:account-detail", args=[seller_account.number]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "Pending review" in page


def test_over_balance_and_bad_quantities_show_errors_and_change_nothing(
    client, issue, seller, seller_account, buyer_account
):
    issue()
    client.force_login(seller)
    for quantity, message in (("5000", "Only 900 t are available"), ("2.5", "whole")):
        response = _transfer_form(
            client,
            seller_account,
            buyer_account,
            key=f"k-{quantity}",
            quantity=quantity,
        )
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not TradeRequest.objects.exists()


def test_accounts_of_other_organizations_are_404(client, issue, buyer, seller_account):
    issue()
    client.force_login(buyer)
    url = reverse("trading:account-detail", args=[seller_account.number])
    assert client.get(url).status_code == 404


def test_a_holder_cannot_spend_another_organizations_account(
    client, issue, buyer, seller_account, buyer_account
):
    issue()
    client.force_login(buyer)
    response = _transfer_form(client, seller_account, buyer_account)
    assert response.status_code == 400  # not one of the buyer's own accounts
    assert not TradeRequest.objects.exists()


def test_review_queue_is_for_registry_admins_and_settles(
    client, issue, seller, seller_account, buyer_account, admin, buyer
):
    issue()
    client.force_login(seller)
    _transfer_form(client, seller_account, buyer_account)
    request = TradeRequest.objects.get()
    client.force_login(buyer)
    assert client.get(reverse("trading:review-queue")).status_code == 403
    client.force_login(admin)
    queue = client.get(reverse("trading:review-queue"), HTTP_ACCEPT_LANGUAGE="en")
    assert f"#{request.pk} Transfer: 100 t CO2e" in queue.content.decode()
    rejected = client.post(
        reverse("trading:review-action", args=[request.pk, "reject"]), {"reason": ""}
    )
    assert rejected.status_code == 302
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING  # a reason is required
    client.post(reverse("trading:review-action", args=[request.pk, "approve"]))
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.SETTLED
    assert get_account_balance(account=buyer_account)["active"] == 100


def test_holders_see_only_their_own_journal_entries_and_csv(
    client, issue, seller, buyer, make_user
):
    issue()
    client.force_login(make_user(role=Role.BUYER))
    page = client.get(reverse("trading:journal"), HTTP_ACCEPT_LANGUAGE="en")
    assert "No journal entries." in page.content.decode()
    client.force_login(seller)
    page = client.get(reverse("trading:journal") + "?kind=issue").content.decode()
    assert LedgerEntry.objects.get(kind="issue").entry_hash[:10] in page
    rows = b"".join(
        client.get(reverse("trading:journal-csv")).streaming_content
    ).decode()
    assert rows.startswith("\ufeffsequence,recorded_at,kind")
    assert len(rows.strip().splitlines()) == 2  # header + the seller's issue entry


def test_list_pages_query_counts_do_not_grow_with_rows(
    client,
    issue,
    seller,
    seller_account,
    buyer_account,
    admin,
    make_user,
    django_assert_max_num_queries,
):
    issue(quantity=5000, buffer=0)
    client.force_login(seller)
    for n in range(6):
        _transfer_form(
            client, seller_account, buyer_account, key=f"many-{n}", quantity="10"
        )
    client.force_login(admin)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("trading:review-queue")).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(reverse("trading:account-list")).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("trading:journal")).status_code == 200


def _cancellation_form(client, account, **fields):
    return client.post(
        reverse("trading:cancellation-create"),
        {
            "from_account": account.pk,
            "quantity": "40",
            "note": "Fire in compartment 12: reversal covered by the buffer pool.",
            "idempotency_key": "cancel-1",
            **fields,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_an_admin_cancels_buffer_credits_and_another_admin_settles_it(
    client, issue, admin, second_admin, operator
):
    issue()
    buffer_pool = operator.accounts.get(kind="buffer_pool")
    client.force_login(admin)
    assert client.get(reverse("trading:cancellation-create")).status_code == 200
    assert _cancellation_form(client, buffer_pool).status_code == 302
    request = TradeRequest.objects.get(kind=TradeRequest.Kind.CANCELLATION)
    assert request.note.startswith("Fire in compartment 12")
    assert get_account_balance(account=buffer_pool)["reserved"] == 40

    client.force_login(second_admin)
    client.post(reverse("trading:review-action", args=[request.pk, "approve"]))
    cancelled = operator.accounts.get(kind="cancellation")
    assert get_account_balance(account=cancelled)["cancelled"] == 40
    assert get_account_balance(account=buffer_pool) == {
        "active": 60,
        "listed": 0,
        "reserved": 0,
        "retired": 0,
        "cancelled": 0,
    }
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CANCEL).count() == 1


def test_a_cancellation_needs_a_reason_and_a_registry_admin(
    client, issue, admin, seller, operator
):
    issue()
    buffer_pool = operator.accounts.get(kind="buffer_pool")
    client.force_login(admin)
    response = _cancellation_form(client, buffer_pool, note="")
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()

    client.force_login(seller)
    assert client.get(reverse("trading:cancellation-create")).status_code == 403
    assert _cancellation_form(client, buffer_pool).status_code == 403
    assert not TradeRequest.objects.exists()
