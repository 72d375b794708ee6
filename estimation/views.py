"""Estimation pages: thin, each parses input, calls one service or selector."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from estimation import services
from estimation.forms import DatasetUploadForm, RunForm
from estimation.maps import render_landcover_png
from estimation.models import Ecosystem, EstimationRun
from estimation.selectors import (
    get_default_methodology,
    get_run_for_user,
    list_datasets,
    list_methodologies,
    list_runs,
)
from registry.boundaries import geojson_feature
from registry.forms import add_service_errors
from registry.models import Project
from registry.roles import Role
from registry.selectors import has_role, list_projects, list_user_organizations

ECOSYSTEM_COLOURS = {
    "forest": "#2f7d32",
    "farmland": "#e0b64a",
    "grassland": "#9ccc65",
    "wetland": "#26a69a",
    "water": "#1e88e5",
    "desert": "#bcaaa4",
    "built_up": "#e53935",
    "other": "#9e9e9e",
}


def _staff_required(user) -> None:
    if not (has_role(user, Role.BUREAU_STAFF) or has_role(user, Role.REGISTRY_ADMIN)):
        raise PermissionDenied(_("Only bureau staff can run estimates."))


@login_required
def index(request):
    return render(
        request,
        "estimation/index.html",
        {
            "runs": list_runs(user=request.user)[:50],
            "datasets": list_datasets(user=request.user)[:50],
            "can_run": has_role(request.user, Role.BUREAU_STAFF),
        },
    )


def methodology_list(request):
    return render(
        request,
        "estimation/methodology_list.html",
        {"methodologies": list_methodologies().prefetch_related("coefficients")},
    )


@login_required
def dataset_upload(request):
    _staff_required(request.user)
    form = DatasetUploadForm(
        request.POST or None,
        request.FILES or None,
        organizations=list_user_organizations(user=request.user),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dataset = services.upload_landcover_dataset(
                actor=request.user,
                organization=data["organization"],
                name_zh=data["name_zh"],
                name_en=data["name_en"],
                product=data["product"],
                year=data["year"],
                scheme=data["scheme"],
                uploaded=data["file"],
                class_field=data["class_field"],
            )
        except ValidationError as error:
            add_service_errors(form, error, default_field="file")
        else:
            messages.success(
                request, _("Land cover “%(name)s” uploaded.") % {"name": dataset}
            )
            return redirect("estimation:run-create")
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "estimation/dataset_form.html", {"form": form}, status=status
    )


@login_required
def run_create(request):
    _staff_required(request.user)
    projects = (
        list_projects(user=request.user)
        .filter(owner__memberships__user=request.user)
        .exclude(status=Project.Status.CLOSED)
    )
    initial = {"methodology": get_default_methodology()}
    if request.GET.get("project"):
        initial["project"] = projects.filter(code=request.GET["project"]).first()
    form = RunForm(
        request.POST or None,
        projects=projects,
        datasets=list_datasets(user=request.user),
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.create_run(
                actor=request.user,
                project=data["project"],
                dataset=data["dataset"],
                baseline_dataset=data["baseline_dataset"],
                methodology=data["methodology"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                price_cny_per_t_co2e=data["price_cny_per_t_co2e"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("estimation:run-detail", pk=run.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "estimation/run_form.html", {"form": form}, status=status)


def _run_or_404(request, pk) -> EstimationRun:
    run = get_run_for_user(user=request.user, pk=pk)
    if run is None:
        raise Http404(_("No such estimation run."))
    return run


@login_required
def run_detail(request, pk):
    run = _run_or_404(request, pk)
    results = list(run.results.all())
    largest = max((abs(row.sink_t_co2e_per_year) for row in results), default=0)
    bars = [
        {
            "row": row,
            "colour": ECOSYSTEM_COLOURS.get(row.ecosystem, "#9e9e9e"),
            "percent": (abs(row.sink_t_co2e_per_year) / largest * 100)
            if largest
            else 0,
        }
        for row in results
    ]
    return render(
        request,
        "estimation/run_detail.html",
        {
            "run": run,
            "results": results,
            "bars": bars,
            "legend": [
                (Ecosystem(key).label, colour)
                for key, colour in ECOSYSTEM_COLOURS.items()
            ],
            "map_layers": {
                "boundary": geojson_feature(run.boundary),
                "landcover": (
                    {"url": f"{request.path}landcover.png", "bounds": _bounds(run)}
                    if run.status == EstimationRun.Status.SUCCEEDED
                    and run.dataset.kind == "raster"
                    else None
                ),
            },
        },
    )


def _bounds(run):
    west, south, east, north = run.boundary.extent
    return [[south, west], [north, east]]


@login_required
@require_GET
def run_status(request, pk):
    run = _run_or_404(request, pk)
    return JsonResponse(
        {
            "status": run.status,
            "status_label": run.get_status_display(),
            "progress": run.progress,
            "error": run.error_message,
        }
    )


@login_required
@require_GET
def run_landcover_png(request, pk):
    run = _run_or_404(request, pk)
    if run.status != EstimationRun.Status.SUCCEEDED or run.dataset.kind != "raster":
        raise Http404
    png = render_landcover_png(run, colours=ECOSYSTEM_COLOURS)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def run_csv(request, pk):
    run = _run_or_404(request, pk)
    if run.status != EstimationRun.Status.SUCCEEDED:
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="estimation-run-{run.pk}.csv"'
    )
    response.write("\ufeff")  # so that spreadsheet programs read the UTF-8 names
    writer = csv.writer(response)
    writer.writerow(
        [
            "rank",
            "ecosystem",
            "area_ha",
            "share",
            "coefficient",
            "coefficient_unit",
            "sink_t_c_per_year",
            "sink_t_co2e_per_year",
            "sink_t_co2e_period",
            "value_cny_per_year",
        ]
    )
    for row in run.results.all():
        writer.writerow(
            [
                row.rank,
                row.ecosystem,
                row.area_ha,
                row.share,
                row.coefficient,
                row.coefficient_unit,
                row.sink_t_c_per_year,
                row.sink_t_co2e_per_year,
                row.sink_t_co2e_period,
                row.value_cny_per_year,
            ]
        )
    writer.writerow(
        [
            "",
            "total",
            run.covered_area_ha,
            "",
            "",
            "",
            run.total_t_c_per_year,
            run.total_t_co2e_per_year,
            run.total_t_co2e_period,
            run.total_value_cny_per_year,
        ]
    )
    writer.writerow([])
    writer.writerow(["boundary_area_ha", run.boundary_area_ha])
    writer.writerow(["nodata_area_ha", run.nodata_area_ha])
    writer.writerow(["outside_map_area_ha", run.outside_area_ha])
    writer.writerow(["methodology", str(run.methodology)])
    writer.writerow(["fingerprint", run.fingerprint])
    return response
