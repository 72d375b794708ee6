"""Estimation pages: thin, each parses input, calls one service or selector."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from common.forms import add_service_errors
from common.spreadsheets import csv_writer
from estimation.forms import (
    DatasetUploadForm,
    DecisionForm,
    IssueForm,
    ResubmitVerificationForm,
    RunForm,
    SubmitVerificationForm,
)
from estimation.maps import ECOSYSTEM_COLOURS
from estimation.models import (
    Ecosystem,
    EstimationRun,
    LandCoverDataset,
    Verification,
    percent_text,
)
from estimation.selectors import (
    can_cancel,
    can_decide_verification,
    can_issue,
    can_retry,
    can_submit_for,
    current_fingerprint,
    get_default_methodology,
    get_run_for_user,
    get_verification_for_user,
    list_datasets,
    list_methodologies,
    list_resubmittable_runs,
    list_runs,
    list_verification_queue,
    list_verifications,
    preview_issuance,
)
from estimation.services.datasets import upload_landcover_dataset
from estimation.services.issuance import issue_verification
from estimation.services.runs import cancel_run, create_run, retry_run
from estimation.services.verification import (
    approve_verification,
    reject_verification,
    submit_for_verification,
)
from registry.boundaries import geojson_feature
from registry.models import Project
from registry.roles import Role
from registry.selectors import (
    has_role,
    list_projects,
    list_user_organizations,
    list_visible_documents,
)


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
            dataset = upload_landcover_dataset(
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
            run = create_run(
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


def _run_context(run: EstimationRun) -> dict:
    """The table, chart and map of a run: shared by its page and the verifier's.
    Reads no file: the land-cover picture was drawn by the run's task and the
    files' checks were recorded by theirs."""
    results = list(run.results.all())
    code_areas = list(run.code_areas.all())
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
    return {
        "run": run,
        "results": results,
        "code_areas": code_areas,
        "bars": bars,
        "legend": [
            (Ecosystem(key).label, colour) for key, colour in ECOSYSTEM_COLOURS.items()
        ],
        "map_layers": {
            "boundary": geojson_feature(run.boundary),
            "landcover": (
                {
                    "url": reverse("estimation:run-landcover", args=[run.pk]),
                    "bounds": _bounds(run),
                }
                if run.landcover_picture
                else None
            ),
        },
        "picture_pending": run.status == EstimationRun.Status.SUCCEEDED
        and run.dataset.kind == LandCoverDataset.Kind.RASTER
        and not run.landcover_picture,
        "run_datasets": [
            dataset
            for dataset in (run.dataset, run.baseline_dataset)
            if dataset is not None
        ],
    }


def _render_run(request, run, *, submit_form=None, status=200):
    context = _run_context(run)
    if (
        run.status == EstimationRun.Status.SUCCEEDED
        and run.project_id
        and can_submit_for(request.user, run)
    ):
        context["submit_form"] = submit_form or SubmitVerificationForm(
            initial={
                "monitoring_start": run.period_start,
                "monitoring_end": run.period_end,
            }
        )
    context["verifications"] = list_verifications(user=request.user).filter(run=run)
    context["can_retry"] = can_retry(request.user, run)
    context["can_cancel"] = can_cancel(request.user, run)
    context["parts_label"] = parts_label(run)
    return render(request, "estimation/run_detail.html", context, status=status)


def parts_label(run) -> str:
    """How far a run measured in parts on several workers has got ("" for a
    run measured in one piece)."""
    if not run.parts_total:
        return ""
    return ngettext(
        "Measured in %(total)s part on the workers: %(done)s done.",
        "Measured in %(total)s parts on the workers: %(done)s done.",
        run.parts_total,
    ) % {"total": run.parts_total, "done": run.parts_done}


@login_required
def run_detail(request, pk):
    return _render_run(request, _run_or_404(request, pk))


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
            "parts_label": parts_label(run),
            "error": run.failure_reason,
        }
    )


@login_required
@require_POST
def run_retry(request, pk):
    run = _run_or_404(request, pk)
    try:
        retry = retry_run(actor=request.user, run=run)
    except ValidationError as error:  # the run's state: shown on its page
        for message in error.messages:
            messages.error(request, message)
        return redirect("estimation:run-detail", pk=run.pk)
    messages.success(
        request,
        _("Run #%(run)s is queued again as run #%(retry)s.")
        % {"run": run.pk, "retry": retry.pk},
    )
    return redirect("estimation:run-detail", pk=retry.pk)


@login_required
@require_POST
def run_cancel(request, pk):
    run = _run_or_404(request, pk)
    try:
        cancel_run(actor=request.user, run=run)
    except ValidationError as error:  # the run's state: shown on its page
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Run #%(run)s is cancelled.") % {"run": run.pk})
    return redirect("estimation:run-detail", pk=run.pk)


@login_required
@require_GET
def run_landcover_png(request, pk):
    """The picture the run's task drew (a small PNG, not the land-cover file)."""
    run = _run_or_404(request, pk)
    if not run.landcover_picture:
        raise Http404(_("The land-cover picture is not ready."))
    try:
        picture = run.landcover_picture.open("rb")
    except OSError:
        raise Http404(_("The land-cover picture is not ready.")) from None
    response = FileResponse(picture, content_type="image/png")
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
    writer = csv_writer(response)
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
    if run.repaired_patches is not None:
        writer.writerow(["repaired_invalid_patches", run.repaired_patches])
    code_areas = list(run.code_areas.all())
    if code_areas:
        writer.writerow([])
        writer.writerow(["survey_code", "survey_class", "area_ha"])
        for row in code_areas:
            writer.writerow([row.code, row.name, row.area_ha])
    return response


# Verification and issuance ---------------------------------------------------------


@login_required
@require_POST
def verification_submit(request, pk):
    run = _run_or_404(request, pk)
    form = SubmitVerificationForm(request.POST)
    if form.is_valid():
        try:
            verification = submit_for_verification(
                actor=request.user,
                run=run,
                monitoring_start=form.cleaned_data["monitoring_start"],
                monitoring_end=form.cleaned_data["monitoring_end"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Run #%(run)s submitted for verification.") % {"run": run.pk},
            )
            return redirect("estimation:verification-detail", pk=verification.pk)
    return _render_run(request, run, submit_form=form, status=400)


@login_required
def verification_list(request):
    user = request.user
    if not (
        has_role(user, Role.VERIFIER)
        or has_role(user, Role.BUREAU_STAFF)
        or has_role(user, Role.REGISTRY_ADMIN)
    ):
        raise PermissionDenied(_("Only bureau staff, verifiers and admins see this."))
    verifications = list_verifications(user=user)
    return render(
        request,
        "estimation/verification_list.html",
        {
            "queue": list_verification_queue(user=user)[:200],
            "to_issue": (
                verifications.filter(status=Verification.Status.APPROVED).order_by(
                    "decided_at", "pk"
                )[:200]
                if can_issue(user)
                else []
            ),
            "verifications": verifications[:100],
            "is_verifier": has_role(user, Role.VERIFIER),
        },
    )


def _verification_or_404(request, pk) -> Verification:
    verification = get_verification_for_user(user=request.user, pk=pk)
    if verification is None:
        raise Http404(_("No such verification."))
    return verification


def _render_verification(
    request,
    verification,
    *,
    decision_form=None,
    resubmit_form=None,
    issue_form=None,
    status=200,
):
    user = request.user
    run = verification.run
    context = _run_context(run)
    methodology = run.methodology
    scheme = run.dataset.scheme
    current = current_fingerprint(run)
    context.update(
        {
            "verification": verification,
            "project": verification.project,
            "methodology": methodology,
            "coefficients": methodology.coefficients.all(),
            "scheme": scheme,
            "mappings": scheme.mappings.all(),
            "current_fingerprint": current,
            "fingerprint_matches": current
            == (verification.fingerprint or run.fingerprint),
            # Only an open verification is stopped by changed inputs; an issued
            # one stands on what was checked then.
            "blocks_issuance": current != (verification.fingerprint or run.fingerprint)
            and verification.status
            in (Verification.Status.SUBMITTED, Verification.Status.APPROVED),
            # As recorded by the file-check task: issuance re-hashes the files.
            "file_problem": any(
                dataset.file_status
                in (
                    LandCoverDataset.FileStatus.DIFFERS,
                    LandCoverDataset.FileStatus.MISSING,
                )
                for dataset in context["run_datasets"]
            ),
            "preview": preview_issuance(
                verification,
                buffer_share=verification.buffer_share,
            ),
            "share_percent": percent_text(
                verification.buffer_share
                if verification.buffer_share is not None
                else methodology.buffer_share
            ),
            "default_share_percent": percent_text(methodology.buffer_share),
            "uncertainty_percent": percent_text(methodology.uncertainty_deduction),
            "documents": list_visible_documents(
                user=user, project=verification.project
            ),
            "revisions": verification.revisions.order_by("pk"),
            "can_decide": can_decide_verification(user, verification),
            "can_issue": can_issue(user, verification),
        }
    )
    if context["can_decide"]:
        context["decision_form"] = decision_form or DecisionForm()
    if context["can_issue"]:
        context["issue_form"] = issue_form or IssueForm(
            initial={"buffer_share_percent": percent_text(methodology.buffer_share)}
        )
    may_resubmit = (
        verification.status == Verification.Status.REJECTED
        and can_submit_for(user, run)
        and not verification.revisions.exclude(
            status=Verification.Status.REJECTED
        ).exists()
    )
    if may_resubmit:
        context["resubmit_form"] = resubmit_form or ResubmitVerificationForm(
            runs=list_resubmittable_runs(verification=verification),
            initial={
                "monitoring_start": verification.monitoring_start,
                "monitoring_end": verification.monitoring_end,
            },
        )
    return render(
        request, "estimation/verification_detail.html", context, status=status
    )


@login_required
def verification_detail(request, pk):
    return _render_verification(request, _verification_or_404(request, pk))


@login_required
@require_POST
def verification_decide(request, pk, action):
    if action not in ("approve", "reject"):
        raise Http404
    verification = _verification_or_404(request, pk)
    form = DecisionForm(request.POST)
    if form.is_valid():
        service = approve_verification if action == "approve" else reject_verification
        try:
            service(
                actor=request.user,
                verification=verification,
                reasons=form.cleaned_data["reasons"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                add_service_errors(form, error)
            else:  # the verification's state: shown even where the form is not
                for message in error.messages:
                    messages.error(request, message)
        else:
            done = (
                _("Verification #%(pk)s approved: a registry admin can now issue it.")
                if action == "approve"
                else _(
                    "Verification #%(pk)s rejected; the submitter has been told why."
                )
            )
            messages.success(request, done % {"pk": verification.pk})
            return redirect("estimation:verification-detail", pk=verification.pk)
    verification.refresh_from_db()
    return _render_verification(request, verification, decision_form=form, status=400)


@login_required
@require_POST
def verification_resubmit(request, pk):
    verification = _verification_or_404(request, pk)
    form = ResubmitVerificationForm(
        request.POST, runs=list_resubmittable_runs(verification=verification)
    )
    if form.is_valid():
        try:
            revised = submit_for_verification(
                actor=request.user,
                run=form.cleaned_data["run"],
                monitoring_start=form.cleaned_data["monitoring_start"],
                monitoring_end=form.cleaned_data["monitoring_end"],
                note=form.cleaned_data["note"],
                revises=verification,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Resubmitted for verification as #%(pk)s.") % {"pk": revised.pk},
            )
            return redirect("estimation:verification-detail", pk=revised.pk)
    return _render_verification(request, verification, resubmit_form=form, status=400)


@login_required
@require_POST
def verification_issue(request, pk):
    verification = _verification_or_404(request, pk)
    form = IssueForm(request.POST)
    if form.is_valid():
        try:
            verification = issue_verification(
                actor=request.user,
                verification=verification,
                buffer_share=form.buffer_share(),
                buffer_share_reason=form.cleaned_data["buffer_share_reason"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                add_service_errors(form, error)
            else:  # the verification's state: shown even where the form is not
                for message in error.messages:
                    messages.error(request, message)
        else:
            batch = verification.batch
            messages.success(
                request,
                _("Issued %(quantity)s t CO2e as batch %(batch)s.")
                % {"quantity": batch.quantity, "batch": batch.serial_label},
            )
            return redirect("trading:batch-detail", pk=batch.pk)
    verification.refresh_from_db()
    return _render_verification(request, verification, issue_form=form, status=400)
