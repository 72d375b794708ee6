"""Demo estimation data: the MODIS 2019 land-cover map shipped in data/modis, and
an estimation run for each registered demo project. Idempotent."""

from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.files import File

from estimation import services
from estimation.models import (
    ClassMapping,
    ClassScheme,
    Coefficient,
    EstimationRun,
    LandCoverDataset,
    Methodology,
)
from estimation.seeds import load_seeds
from registry.models import Organization, Project, User

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
            dataset = services.upload_landcover_dataset(
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
        existing = project.estimation_runs.first()
        if existing is not None:
            runs.append(existing)
            continue
        actor = bureau_staff
        if not project.owner.memberships.filter(user=actor).exists():
            actor = project.owner.memberships.first().user
        runs.append(
            services.create_run(
                actor=actor,
                project=project,
                dataset=dataset,
                methodology=methodology,
                period_start=date(2021, 1, 1),
                period_end=date(2025, 12, 31),
                price_cny_per_t_co2e=DEMO_PRICE,
            )
        )
    return runs
