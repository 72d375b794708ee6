"""The Django side of the fault tests: each function runs in a process of its
own on the test's database (``python -m tests.faults.scenario NAME JSON``,
from ``Stack.django``) and prints its JSON answer on the last line. Data is
made through the registry's own services, as the pages would make it."""

import json
import sys
from datetime import date
from pathlib import Path


def _token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def _person(role, organization, name: str):
    from registry.services import add_member, grant_role
    from tests.registry.factories import UserFactory

    person = UserFactory(username=name)
    if role is not None:
        grant_role(user=person, role=role)
    add_member(user=person, organization=organization)
    return person


def _organization(n: int, kind: str = "project_owner"):
    """An organization made as the registry makes one (with its accounts)."""
    from registry import services, uscc

    body = f"91520500MA{n:07d}"
    return services.create_organization(
        name_zh=f"组织{n}",
        name_en=f"Organization {n}",
        kind=kind,
        uscc=body + uscc.check_character(body),
    )


def _operator():
    from registry import services
    from registry.models import Organization

    return services.create_organization(
        name_zh="登记中心",
        name_en="Registry operator",
        kind=Organization.Kind.REGISTRY_OPERATOR,
        uscc="12520500MB18360416",
    )


def seed_ledger(*, clients: int, holdings: int) -> dict:
    """An operator with a registry admin, and per client a seller (holding
    ``holdings`` t of a batch of its own) and a buyer."""
    from registry.models import Account
    from registry.roles import Role
    from tests.registry.projects import make_project
    from trading import services

    admin = _person(Role.REGISTRY_ADMIN, _operator(), "admin")
    first_owner = _organization(1)
    first_staff = _person(Role.BUREAU_STAFF, first_owner, "owner")
    project = make_project(actor=first_staff, owner=first_owner)
    pairs = []
    for n in range(clients):
        seller_org, buyer_org = _organization(10 + 2 * n), _organization(11 + 2 * n)
        seller = _person(Role.BUREAU_STAFF, seller_org, f"seller{n}")
        seller_account = Account.objects.get(organization=seller_org, kind="holding")
        buyer_account = Account.objects.get(organization=buyer_org, kind="holding")
        services.issue_batch(
            actor=admin,
            project=project,
            vintage=2024,
            monitoring_start=date(2024, 1, 1 + n),
            monitoring_end=date(2024, 1, 1 + n),
            quantity=holdings,
            buffer_quantity=0,
            holder_account=seller_account,
        )
        pairs.append(
            {
                "seller": seller.pk,
                "token": _token(seller),
                "from_account": seller_account.number,
                "to_account": buyer_account.number,
            }
        )
    return {"admin_token": _token(admin), "pairs": pairs}


def trade_requests(*, sellers: list[int]) -> dict:
    """Every trade request of these sellers: {key: [status, quantity]}; and
    each buyer's holdings."""
    from trading.models import TradeRequest

    requests = {}
    for request in TradeRequest.objects.filter(initiator_id__in=sellers):
        assert request.idempotency_key not in requests, request.idempotency_key
        requests[request.idempotency_key] = [request.status, request.quantity]
    return requests


def seed_estimation(
    *,
    raster: str,
    boundary_side_m: int,
    corner: tuple[float, float] = (105.6, 27.1),
    class_field: str = "",
) -> dict:
    """A bureau's staff (with a token), a project over the map and the map
    (a GeoTIFF, or polygons with ``class_field``) uploaded as a dataset."""
    from django.core.files import File

    from estimation.models import ClassScheme, Methodology
    from estimation.services.datasets import upload_landcover_dataset
    from registry.roles import Role
    from tests.registry.projects import make_project, square

    owner = _organization(800)
    staff = _person(Role.BUREAU_STAFF, owner, "staff")
    project = make_project(
        actor=staff, owner=owner, geometry=square(*corner, boundary_side_m)
    )
    path = Path(raster)
    with path.open("rb") as handle:
        upload = File(handle, name=path.name)
        dataset = upload_landcover_dataset(
            actor=staff,
            organization=owner,
            name_zh="故障测试",
            name_en="Fault test",
            product="modis-igbp",
            year=2019,
            scheme=ClassScheme.objects.get(slug="modis-igbp"),
            uploaded=upload,
            class_field=class_field,
        )
    return {
        "staff": staff.pk,
        "token": _token(staff),
        "owner": owner.pk,
        "project": project.pk,
        "project_code": project.code,
        "dataset": dataset.pk,
        "methodology": Methodology.objects.get(is_default=True).pk,
    }


def create_run(*, staff: int, project: int, dataset: int) -> dict:
    """Queue a run (sent to the broker once the transaction commits)."""
    from estimation.models import LandCoverDataset, Methodology
    from estimation.services.runs import create_run as queue_run
    from registry.models import Project, User

    run = queue_run(
        actor=User.objects.get(pk=staff),
        project=Project.objects.get(pk=project),
        dataset=LandCoverDataset.objects.get(pk=dataset),
        methodology=Methodology.objects.get(is_default=True),
        period_start=date(2021, 1, 1),
        period_end=date(2021, 12, 31),
    )
    return {"run": run.pk}


def runs(*, ids: list[int]) -> dict:
    from estimation.models import EstimationRun

    return {
        str(run.pk): {
            "status": run.status,
            # getattr: the same suite also runs against older code (see the
            # report of which faults failed before the fixes).
            "attempts": getattr(run, "attempts", None),
            "error_code": run.error_code,
            "results": run.results.count(),
            "progress": run.progress,
        }
        for run in EstimationRun.objects.filter(pk__in=ids)
    }


def backdate_heartbeat(*, run: int, minutes: int) -> dict:
    """The clock moved on: the run's last heartbeat ``minutes`` ago (the sweep
    then sees it as stale without the test waiting for real minutes)."""
    from datetime import timedelta

    from django.utils import timezone

    from estimation.models import EstimationRun

    then = timezone.now() - timedelta(minutes=minutes)
    fields = {"started_at": then}
    if hasattr(EstimationRun, "heartbeat_at"):
        fields["heartbeat_at"] = then
    updated = EstimationRun.objects.filter(pk=run, status="running").update(**fields)
    return {"updated": updated}


def upload_document(*, pdf_bytes: int) -> dict:
    """A project document upload (the registry's service, as the project form
    calls it): the refusal's code and message, in both languages."""
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import translation

    from registry.models import ProjectDocument
    from registry.roles import Role
    from registry.services import add_project_document
    from tests.registry.projects import make_project

    owner = _organization(900)
    staff = _person(Role.BUREAU_STAFF, owner, "documents")
    project = make_project(actor=staff, owner=owner)
    upload = SimpleUploadedFile(
        "survey.pdf", b"%PDF-1.4\n" + b"0" * pdf_bytes, content_type="application/pdf"
    )
    answer = {"code": None, "message": {}, "class": None}
    try:
        add_project_document(
            actor=staff, project=project, kind="other", uploaded=upload
        )
    except ValidationError as error:
        answer["code"] = getattr(error, "code", None)
        answer["class"] = error.__class__.__name__
        for language in ("en", "zh-hans"):
            with translation.override(language):
                answer["message"][language] = " ".join(str(m) for m in error.messages)
    answer["rows"] = ProjectDocument.objects.filter(project=project).count()
    return answer


def backup_snapshot() -> dict:
    """What must survive a backup and restore: each certificate's check, each
    run's fingerprint then and now, the journal's head and size."""
    from estimation.models import EstimationRun
    from estimation.selectors import current_fingerprint
    from trading.certificates import check_certificate
    from trading.models import Certificate, LedgerEntry, LedgerHead

    return {
        "certificates": {
            certificate.number: check_certificate(certificate).valid
            for certificate in Certificate.objects.all()
        },
        "runs": {
            str(run.pk): [run.fingerprint, current_fingerprint(run)]
            for run in EstimationRun.objects.filter(status="succeeded")
        },
        "head": LedgerHead.objects.values_list("last_hash", flat=True).first(),
        "entries": LedgerEntry.objects.count(),
    }


def issue_next_period() -> dict:
    """Baili's 2024-2025 (which the demo leaves open): estimated again (the
    restored land-cover file read), submitted, verified and issued as a new
    batch (the file re-hashed on the way)."""
    from estimation.models import EstimationRun
    from estimation.services.issuance import issue_verification
    from estimation.services.runs import create_run as queue_run
    from estimation.services.runs import execute_run
    from estimation.services.verification import (
        approve_verification,
        submit_for_verification,
    )
    from registry.models import User

    first = EstimationRun.objects.get(
        project__name_en="Baili Azalea Forest Carbon Sink Project",
        status="succeeded",
    )
    run = queue_run(
        actor=first.created_by,
        project=first.project,
        dataset=first.dataset,
        methodology=first.methodology,
        period_start=date(2024, 1, 1),
        period_end=date(2025, 12, 31),
        price_cny_per_t_co2e=first.price_cny_per_t_co2e,
    )
    run = execute_run(run_id=run.pk)  # here, not by a worker
    assert run.status == "succeeded", run.error_message
    verification = submit_for_verification(
        actor=run.created_by, run=run, note="After the restore."
    )
    approve_verification(
        actor=User.objects.get(username="verifier_demo"),
        verification=verification,
        reasons="Checked after the restore.",
    )
    issued = issue_verification(
        actor=User.objects.get(username="registry_admin_demo"),
        verification=verification,
    )
    return {"status": issued.status, "quantity": issued.batch.quantity}


def main() -> None:
    import django

    django.setup()
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = globals()[name](**arguments)
    print(json.dumps(answer, default=str))


if __name__ == "__main__":
    main()
