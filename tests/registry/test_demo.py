import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from registry.demo import DEMO_PASSWORD, ORGANIZATIONS, USERS
from registry.models import Membership, Organization, User
from registry.roles import Role

pytestmark = pytest.mark.django_db


def test_load_bijie_demo_creates_one_user_per_role_and_is_idempotent():
    call_command("load_bijie_demo")
    call_command("load_bijie_demo")

    assert Organization.objects.filter(is_demo=True).count() == len(ORGANIZATIONS)
    assert User.objects.count() == len(USERS)
    assert Membership.objects.count() == len(USERS)
    kinds = set(Organization.objects.values_list("kind", flat=True))
    assert kinds == {kind.value for kind in Organization.Kind}

    roles = {
        user.username: set(user.groups.values_list("name", flat=True))
        for user in User.objects.all()
    }
    assert roles == {
        "bureau_demo": {Role.BUREAU_STAFF},
        "verifier_demo": {Role.VERIFIER},
        "buyer_demo": {Role.BUYER},
        "village_demo": {Role.BUREAU_STAFF},
        "registry_admin_demo": {Role.REGISTRY_ADMIN},
    }
    for user in User.objects.all():
        assert user.check_password(DEMO_PASSWORD)


@pytest.mark.parametrize("username", [user.username for user in USERS])
def test_demo_users_can_log_in(client, username):
    call_command("load_bijie_demo")
    response = client.post("/login/", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200


@override_settings(DEMO_DATA_ALLOWED=False)
def test_load_bijie_demo_refuses_production_settings():
    with pytest.raises(CommandError, match="production"):
        call_command("load_bijie_demo")
    assert not Organization.objects.exists()


def test_the_demo_issues_credits_through_verification_once():
    from estimation.models import Verification
    from registry.models import ProjectEvent
    from trading.models import CreditBatch

    call_command("load_bijie_demo")
    call_command("load_bijie_demo")

    batches = list(CreditBatch.objects.select_related("project"))
    assert {batch.project.name_en for batch in batches} == {
        "Baili Azalea Forest Carbon Sink Project",
        "Xinchun Village Collective Forest Carbon Project",
    }
    for batch in batches:
        verification = Verification.objects.get(batch=batch)
        # The methodology's buffer share, rounded down.
        assert batch.buffer_quantity == int(batch.quantity * verification.buffer_share)
        assert batch.quantity > batch.buffer_quantity
        assert verification.verifier.username == "verifier_demo"
        assert (
            batch.project.events.filter(kind=ProjectEvent.Kind.CREDITS_ISSUED).count()
            == 1
        )


def test_the_demo_settles_one_retirement_with_a_chinese_beneficiary(client):
    from trading.models import Certificate, TradeRequest

    call_command("load_bijie_demo")
    call_command("load_bijie_demo")

    certificate = Certificate.objects.get()
    assert certificate.beneficiary == "贵州绿筑建设集团有限公司"
    assert TradeRequest.objects.filter(status="settled").count() == 2
    page = client.get(f"/verify/{certificate.token}/")
    assert 'data-valid="true"' in page.content.decode()


def test_the_demo_publishes_a_signed_journal_head_once():
    from trading.models import JournalAnchor, LedgerEntry
    from trading.verification import check_anchor

    call_command("load_bijie_demo")
    call_command("load_bijie_demo")

    last = LedgerEntry.objects.order_by("-sequence").first()
    anchor = JournalAnchor.objects.get()
    assert (anchor.sequence, anchor.entry_hash) == (last.sequence, last.entry_hash)
    assert check_anchor(anchor.document()).valid


def test_the_demo_market_offers_some_of_the_bureaus_baili_credits_once():
    from trading.models import Listing
    from trading.verification import verify_ledger

    call_command("load_bijie_demo")
    call_command("load_bijie_demo")

    listing = Listing.objects.get()
    assert listing.batch.project.name_en.startswith("Baili")
    assert (listing.quantity_left, listing.price_per_tonne) == (120, 98)
    assert listing.created_by.username == "bureau_demo"
    assert verify_ledger(record=False).violations == []
