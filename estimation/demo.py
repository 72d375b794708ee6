"""Demo estimation data: the MODIS 2019 land-cover map shipped in data/modis, an
estimation run for each registered demo project, and credits issued from those
runs through the verification workflow. Idempotent."""

from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.files import File

from estimation.models import (
    ClassMapping,
    ClassScheme,
    Coefficient,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    Verification,
)
from estimation.seeds import load_seeds
from estimation.services.datasets import upload_landcover_dataset
from estimation.services.issuance import issue_verification
from estimation.services.runs import (
    create_run,
    execute_run,
)
from estimation.services.verification import (
    approve_verification,
    submit_for_verification,
)
from registry.models import Organization, Project, User
from trading.models import CreditBatch

MODIS_FILE = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "modis"
    / "mcd12c1_2019_igbp_guizhou.tif"
)
DEMO_PRICE = Decimal("95.70")  # 2024 national ETS average, CNY per t CO2e


def load_demo_estimation(organizations: dict[str, Organization]) -> list[EstimationRun]:
    if not Methodology.objects.exists():  # a flushed database
        load_seeds(
            scheme_model=ClassScheme,
            mapping_model=ClassMapping,
            methodology_model=Methodology,
            coefficient_model=Coefficient,
        )
    bureau_staff = User.objects.get(username="bureau_demo")
    demo_datasets = LandCoverDataset.objects.filter(is_demo=True, product="modis-igbp")
    dataset = demo_datasets.first()
    if dataset is None:
        with MODIS_FILE.open("rb") as handle:
            upload = File(handle, name=MODIS_FILE.name)
            upload.size = MODIS_FILE.stat().st_size
            dataset = upload_landcover_dataset(
                actor=bureau_staff,
                organization=organizations["bureau"],
                name_zh="MODIS 2019 土地覆盖（贵州，0.05°）",
                name_en="MODIS 2019 land cover (Guizhou, 0.05°)",
                product="modis-igbp",
                year=2019,
                scheme=ClassScheme.objects.get(slug="modis-igbp"),
                uploaded=upload,
                is_demo=True,
            )
    runs = []
    methodology = Methodology.objects.get(is_default=True)
    for project in Project.objects.filter(is_demo=True, status="registered"):
        existing = project.estimation_runs.order_by("pk").first()
        if existing is not None:
            runs.append(execute_run(run_id=existing.pk))
            continue
        actor = bureau_staff
        if not project.owner.memberships.filter(user=actor).exists():
            actor = project.owner.memberships.first().user
        run = create_run(
            actor=actor,
            project=project,
            dataset=dataset,
            methodology=methodology,
            period_start=date(2021, 1, 1),
            period_end=date(2025, 12, 31),
            price_cny_per_t_co2e=DEMO_PRICE,
        )
        # Computed here rather than by the queued task, so that the demo's
        # credits can be issued from it in the same command (inside a caller's
        # transaction the task would only start at commit). The task, when it
        # runs, finds the run finished and leaves it.
        runs.append(execute_run(run_id=run.pk))
    return runs


# Monitoring periods issued for the demo projects (by English name). Baili's
# 2024-2025 are left for a new user to estimate, verify and issue.
DEMO_ISSUANCE = {
    "Baili Azalea Forest Carbon Sink Project": (date(2021, 1, 1), date(2023, 12, 31)),
    "Xinchun Village Collective Forest Carbon Project": (
        date(2021, 1, 1),
        date(2025, 12, 31),
    ),
}


def load_demo_issuance(runs: list[EstimationRun]) -> list[CreditBatch]:
    """Submit, verify and issue each demo run for its monitoring period, through
    the same services the pages use; projects already verified are left."""
    verifier = User.objects.get(username="verifier_demo")
    admin = User.objects.get(username="registry_admin_demo")
    batches = []
    for run in runs:
        run = EstimationRun.objects.select_related("project").get(pk=run.pk)
        period = DEMO_ISSUANCE.get(run.project.name_en if run.project else "")
        if period is None or run.status != EstimationRun.Status.SUCCEEDED:
            continue
        done = run.project.verifications.filter(
            monitoring_start=period[0], monitoring_end=period[1]
        ).first()
        if done is None:
            done = submit_for_verification(
                actor=run.created_by,
                run=run,
                monitoring_start=period[0],
                monitoring_end=period[1],
                note="演示：首个监测期。/ Demo: first monitoring period.",
            )
            approve_verification(
                actor=verifier,
                verification=done,
                reasons=(
                    "演示核查：边界、土地覆盖和系数已核对。/ Demo verification: "
                    "boundary, land cover and coefficients checked."
                ),
            )
            done = issue_verification(actor=admin, verification=done)
        if done.status == Verification.Status.ISSUED:
            batches.append(done.batch)
    return batches
