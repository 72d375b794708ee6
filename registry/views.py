"""Registry pages: thin, each parses input, calls one service or selector, renders."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import cache_page
from django.views.decorators.http import require_GET, require_POST

from common.forms import add_service_errors
from registry import services
from registry.boundaries import geojson_feature
from registry.forms import (
    DecisionForm,
    ProjectFilterForm,
    ProjectForm,
    ReasonForm,
    RoleGrantFilterForm,
    RoleGrantForm,
)
from registry.models import Alert, ProjectDocument, RoleGrant
from registry.roles import Role
from registry.selectors import (
    allowed_project_actions,
    can_edit_project,
    can_view_document,
    get_project_credit_totals,
    get_project_for_user,
    get_user_roles,
    has_role,
    list_counties,
    list_project_batches,
    list_project_history,
    list_projects,
    list_role_grants,
    list_role_grants_to_decide,
    list_role_grants_waiting_on_others,
    list_user_organizations,
    list_visible_documents,
    may_manage_role_grants,
    may_see_alerts,
    password_setup_path,
)

PROJECTS_PER_PAGE = 20
MAP_FEATURE_LIMIT = 2000
# Degrees; small enough to keep a 1 ha parcel's shape at city zoom.
MAP_SIMPLIFY_TOLERANCE = 0.0001


def home(request):
    return render(
        request,
        "registry/home.html",
        {"organizations": list_user_organizations(user=request.user)},
    )


@login_required
def account(request):
    return render(
        request,
        "registry/account.html",
        {
            "organizations": list_user_organizations(user=request.user),
            "roles": get_user_roles(user=request.user),
        },
    )


def project_list(request):
    filter_form = ProjectFilterForm(request.GET or None)
    filters = filter_form.filters() if request.GET else {}
    projects = list_projects(user=request.user, **filters)
    page = Paginator(projects, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "registry/project_list.html",
        {
            "filter_form": filter_form,
            "page": page,
            "query": query.urlencode(),
            "map_data_url": f"{request.path}map.geojson?{query.urlencode()}",
            "can_register": has_role(request.user, Role.BUREAU_STAFF),
        },
    )


@require_GET
def project_map_data(request):
    """The filtered projects as GeoJSON for the list page's map."""
    filter_form = ProjectFilterForm(request.GET or None)
    filters = filter_form.filters() if request.GET else {}
    projects = list_projects(user=request.user, **filters).defer(None)
    features = [
        geojson_feature(
            project.boundary.simplify(MAP_SIMPLIFY_TOLERANCE, preserve_topology=True),
            code=project.code,
            name=project.display_name,
            status=project.get_status_display(),
            area_ha=str(project.area_ha),
            url=f"/projects/{project.code}/",
        )
        for project in projects[:MAP_FEATURE_LIMIT]
    ]
    return JsonResponse({"type": "FeatureCollection", "features": features})


@require_GET
@cache_page(60 * 60)
def county_map_data(request):
    """Bijie's counties, simplified for display."""
    features = [
        geojson_feature(
            county.boundary.simplify(0.002, preserve_topology=True),
            adcode=county.adcode,
            name=county.display_name,
        )
        for county in list_counties()
    ]
    return JsonResponse({"type": "FeatureCollection", "features": features})


def _project_or_404(request, code):
    project = get_project_for_user(user=request.user, code=code)
    if project is None:
        raise Http404(_("No such project."))
    return project


def _render_detail(request, project, *, overlaps=(), status=200, reason_form=None):
    user = request.user
    actions = allowed_project_actions(user, project)
    map_layers = {
        "boundary": geojson_feature(project.boundary, code=project.code),
        "overlaps": [
            geojson_feature(
                overlap.geometry,
                code=overlap.project.code,
                name=overlap.project.display_name,
                area_ha=f"{overlap.area_ha:,.2f}",
            )
            for overlap in overlaps
        ],
    }
    return render(
        request,
        "registry/project_detail.html",
        {
            "project": project,
            "documents": list_visible_documents(user=user, project=project),
            "history": list_project_history(project=project),
            "batches": list_project_batches(project=project),
            "credit_totals": get_project_credit_totals(project=project),
            "can_edit": "submit" in actions,
            "actions": actions,
            "reason_form": reason_form or ReasonForm(),
            "overlaps": overlaps,
            "map_layers": map_layers,
        },
        status=status,
    )


def project_detail(request, code):
    return _render_detail(request, _project_or_404(request, code))


def _project_form(request, *, project=None):
    organizations = list_user_organizations(user=request.user)
    initial = None
    if project is not None:
        initial = {
            field: getattr(project, field)
            for field in (
                "name_zh",
                "name_en",
                "owner",
                "county",
                "ecosystem_focus",
                "crediting_start",
                "crediting_end",
                "description",
            )
        }
        initial["boundary_geojson"] = project.boundary.json
    return ProjectForm(
        request.POST or None,
        request.FILES or None,
        organizations=organizations,
        initial=initial,
        boundary_required=project is None,
    )


def _details(form) -> services.ProjectDetails:
    data = form.cleaned_data
    return services.ProjectDetails(
        name_zh=data["name_zh"],
        name_en=data["name_en"],
        owner=data["owner"],
        county=data["county"],
        crediting_start=data["crediting_start"],
        crediting_end=data["crediting_end"],
        ecosystem_focus=data["ecosystem_focus"],
        description=data["description"],
    )


def _render_form(request, form, project=None, status=200):
    return render(
        request,
        "registry/project_form.html",
        {
            "form": form,
            "project": project,
            "preview": form.boundary if form.is_bound else None,
        },
        status=status,
    )


@login_required
def project_create(request):
    if not has_role(request.user, Role.BUREAU_STAFF):
        raise PermissionDenied(_("Only bureau staff can register projects."))
    form = _project_form(request)
    if request.method == "POST" and form.is_valid() and "preview" not in request.POST:
        try:
            project = services.create_project(
                actor=request.user,
                details=_details(form),
                boundary=form.boundary,
                documents=form.documents(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Draft %(code)s saved. Submit it when it is ready for review.")
                % {"code": project.code},
            )
            return redirect("registry:project-detail", code=project.code)
    status = 400 if form.is_bound and form.errors else 200
    return _render_form(request, form, status=status)


@login_required
def project_edit(request, code):
    project = _project_or_404(request, code)
    if not can_edit_project(request.user, project):
        raise PermissionDenied(_("You cannot edit this project."))
    form = _project_form(request, project=project)
    if request.method == "POST" and form.is_valid() and "preview" not in request.POST:
        try:
            services.update_project(
                actor=request.user,
                project=project,
                details=_details(form),
                boundary=form.boundary,
                documents=form.documents(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("registry:project-detail", code=project.code)
    status = 400 if form.is_bound and form.errors else 200
    return _render_form(request, form, project=project, status=status)


# Lazy: translated for each request's language, not once at import.
ACTIONS = {
    "submit": (
        services.submit_project,
        False,
        gettext_lazy("Project submitted for review."),
    ),
    "approve": (services.approve_project, True, gettext_lazy("Project registered.")),
    "return": (
        services.return_project,
        True,
        gettext_lazy("Project returned to its owner."),
    ),
    "suspend": (services.suspend_project, True, gettext_lazy("Project suspended.")),
    "reinstate": (
        services.reinstate_project,
        True,
        gettext_lazy("Project reinstated."),
    ),
    "close": (services.close_project, True, gettext_lazy("Project closed.")),
}


@login_required
@require_POST
def project_action(request, code, action):
    if action not in ACTIONS:
        raise Http404
    project = _project_or_404(request, code)
    service, takes_reason, done = ACTIONS[action]
    reason_form = ReasonForm(request.POST)
    reason_form.is_valid()
    kwargs = {"actor": request.user, "project": project}
    if takes_reason:
        kwargs["reason"] = reason_form.cleaned_data.get("reason", "")
    try:
        service(**kwargs)
    except services.OverlapError as error:
        messages.error(request, error.message)
        return _render_detail(request, project, overlaps=error.overlaps, status=409)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return _render_detail(request, project, reason_form=reason_form, status=400)
    messages.success(request, str(done))
    return redirect("registry:project-detail", code=project.code)


@require_GET
def document_download(request, pk):
    document = get_object_or_404(
        ProjectDocument.objects.select_related("project__owner"), pk=pk
    )
    if not can_view_document(request.user, document):
        raise Http404(_("No such document."))
    return FileResponse(
        document.file.open("rb"), as_attachment=True, filename=document.original_name
    )


# Role grants ----------------------------------------------------------------------

ROLE_GRANTS_PER_PAGE = 50


def _role_grant_officer_required(user) -> None:
    if not may_manage_role_grants(user):
        raise PermissionDenied(_("Only registry admins manage roles and members."))


def _render_role_grant_queue(request, *, status=200):
    user = request.user
    return render(
        request,
        "registry/role_grant_queue.html",
        {
            "to_decide": list_role_grants_to_decide(user=user)[:200],
            "waiting": list_role_grants_waiting_on_others(user=user)[:200],
            "decision_form": DecisionForm(),
        },
        status=status,
    )


@login_required
def role_grant_queue(request):
    _role_grant_officer_required(request.user)
    return _render_role_grant_queue(request)


@login_required
def role_grant_create(request):
    _role_grant_officer_required(request.user)
    form = RoleGrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = services.request_role_grant(actor=request.user, **data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Request #%(number)s saved. Another registry admin decides it; "
                    "nothing changes until then."
                )
                % {"number": grant.pk},
            )
            return redirect("registry:role-grant-queue")
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "registry/role_grant_form.html", {"form": form}, status=status
    )


@login_required
@require_POST
def role_grant_decide(request, pk, action):
    _role_grant_officer_required(request.user)
    if action not in ("approve", "reject"):
        raise Http404
    grant = get_object_or_404(RoleGrant, pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    note = form.cleaned_data.get("note", "")
    try:
        if action == "approve":
            grant = services.approve_role_grant(
                grant=grant, approver=request.user, note=note
            )
        else:
            grant = services.reject_role_grant(
                grant=grant, approver=request.user, note=note
            )
    except PermissionDenied as error:
        messages.error(request, str(error))
        return _render_role_grant_queue(request, status=403)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return _render_role_grant_queue(request, status=400)
    if action == "reject":
        messages.success(
            request,
            _("Request #%(number)s rejected; nothing changed.") % {"number": pk},
        )
        return redirect("registry:role-grant-queue")
    if grant.kind != RoleGrant.Kind.CREATE_USER:
        messages.success(
            request, _("Request #%(number)s approved and applied.") % {"number": pk}
        )
        return redirect("registry:role-grant-queue")
    # The link goes to the new user's e-mail only: whoever holds it chooses the
    # password, so neither the requester nor the approver ever sees it.
    link = request.build_absolute_uri(password_setup_path(user=grant.user))
    return render(
        request,
        "registry/role_grant_approved.html",
        {
            "grant": grant,
            "emailed": services.send_password_setup_link(user=grant.user, url=link),
            "reset_url": request.build_absolute_uri(reverse("registry:password-reset")),
        },
    )


@login_required
def role_grant_audit(request):
    _role_grant_officer_required(request.user)
    filter_form = RoleGrantFilterForm(request.GET or None)
    filters = filter_form.filters() if request.GET else {}
    grants = list_role_grants(**filters)
    page = Paginator(grants, ROLE_GRANTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "registry/role_grant_audit.html",
        {"filter_form": filter_form, "page": page, "query": query.urlencode()},
    )


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """Where a user created by a role grant chooses their password, from the
    one-time link (Django's password-reset token: it stops working once used,
    once the user signs in, or after PASSWORD_RESET_TIMEOUT)."""

    template_name = "registry/password_set.html"
    success_url = reverse_lazy("registry:password-set-done")


class PasswordLinkRequestView(auth_views.PasswordResetView):
    """Anyone asks for a link to choose a password, sent to the e-mail address
    of their account (a new user whose first e-mail went astray, or someone who
    forgot). The page says the same whether or not the address is known."""

    template_name = "registry/password_reset.html"
    email_template_name = "registry/password_reset_email.txt"
    subject_template_name = "registry/password_reset_subject.txt"
    success_url = reverse_lazy("registry:password-reset-sent")


def password_link_sent(request):
    return render(request, "registry/password_reset_sent.html")


def password_set_done(request):
    return render(
        request, "registry/password_set_done.html", {"login_url": reverse("login")}
    )


# Alerts -----------------------------------------------------------------------------


@login_required
@require_POST
def alert_acknowledge(request, pk):
    """The banner's "Acknowledge" button; back to the page it was on."""
    if not may_see_alerts(request.user):
        raise PermissionDenied(_("Only a registry admin can acknowledge an alert."))
    alert = get_object_or_404(Alert, pk=pk)
    try:
        services.acknowledge_alert(actor=request.user, alert=alert)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(
            request,
            _("Alert acknowledged: it is no longer shown to the registry admins."),
        )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url,
        allowed_hosts={request.get_host()},
        require_https=request.is_secure(),
    ):
        next_url = reverse("home")
    return redirect(next_url)
