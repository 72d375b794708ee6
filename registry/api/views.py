"""Registry endpoints: sign-in tokens, organizations and projects. Thin: parse
input, call one service or selector, serialize."""

import re

from axes.handlers.proxy import AxesProxyHandler
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework_gis.filters import InBBoxFilter
from rest_framework_gis.pagination import GeoJsonPagination

from api.pagination import StrictPageMixin
from api.schema import ErrorSerializer
from api.throttles import AuthThrottle
from api.viewsets import ApiViewSet, query_parameters
from registry import services
from registry.api.serializers import (
    OrganizationSerializer,
    ProjectFilterSerializer,
    ProjectSerializer,
    ProjectWriteSerializer,
    ReasonSerializer,
)
from registry.models import Project
from registry.roles import Role
from registry.selectors import (
    can_edit_project,
    get_project_for_user,
    has_role,
    list_projects,
    list_user_organizations,
    list_visible_organizations,
)


class TokenView(ObtainAuthToken):
    """Username and password in, the user's API token out (send it as
    ``Authorization: Token <token>``). Rate limited per client address, and
    locked like the sign-in page after repeated failures (django-axes)."""

    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema(
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "`authorization`: the username and password do not match "
                    "an active user; or a field is missing (`fields`)."
                ),
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "`throttled`: too many attempts from this address, or this "
                    "username is locked after repeated failures."
                ),
            ),
        }
    )
    def post(self, request, *args, **kwargs):
        credentials = {"username": str(request.data.get("username", ""))}
        if AxesProxyHandler.is_locked(request._request, credentials=credentials):
            raise exceptions.Throttled(
                detail=_(
                    "Too many failed sign-ins for this user from this address: "
                    "try again in 15 minutes."
                )
            )
        return super().post(request, *args, **kwargs)


class OrganizationViewSet(mixins.ListModelMixin, ApiViewSet):
    """The organizations the caller acts for (all, for registry admins)."""

    serializer_class = OrganizationSerializer

    def get_queryset(self):
        return list_visible_organizations(user=self.request.user)

    def retrieve(self, request, pk=None):
        organization = self.get_queryset().filter(pk=self.lookup_value()).first()
        if organization is None:
            raise exceptions.NotFound()
        return Response(self.get_serializer(organization).data)


# Four plain decimal numbers (no exponents, infinities or NaN), as the schema
# states them; the ranges and the order are checked after.
BBOX_PATTERN = r"^-?[0-9]{1,3}(?:\.[0-9]{1,15})?(?:,-?[0-9]{1,3}(?:\.[0-9]{1,15})?){3}$"


class ProjectBBoxFilter(InBBoxFilter):
    """``in_bbox=west,south,east,north`` (degrees): projects whose boundary's
    bounding box meets it. Malformed boxes get a translated 400."""

    def get_filter_bbox(self, request):
        values = request.query_params.getlist(self.bbox_param)
        if not values:
            return None
        # Given twice or empty: refused like any malformed box.
        text = values[0] if len(values) == 1 else ""
        numbers = (
            [float(part) for part in text.split(",")]
            if re.fullmatch(BBOX_PATTERN, text)
            else []
        )
        valid = (
            len(numbers) == 4
            and -180 <= numbers[0] < numbers[2] <= 180
            and -90 <= numbers[1] < numbers[3] <= 90
        )
        if not valid:
            raise exceptions.ValidationError(
                {
                    self.bbox_param: [
                        exceptions.ErrorDetail(
                            _(
                                "Give the box as west,south,east,north in "
                                "degrees, west below east and south below north."
                            ),
                            code="bbox",
                        )
                    ]
                }
            )
        return super().get_filter_bbox(request)


class ProjectPagination(StrictPageMixin, GeoJsonPagination):
    """A GeoJSON FeatureCollection with the page's count and links."""

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "allOf": [
                schema,
                {
                    "type": "object",
                    "required": ["count", "features"],
                    "properties": {
                        "count": {"type": "integer"},
                        "next": link,
                        "previous": link,
                    },
                },
            ]
        }


# The boundary comes as GeoJSON in a JSON body, or as a file (up to 20 MB, like
# the web form's upload) in a multipart one.
PROJECT_WRITE_BODIES = {
    "application/json": ProjectWriteSerializer,
    "multipart/form-data": ProjectWriteSerializer,
}

ACTIONS = {
    "submit": (services.submit_project, False),
    "approve": (services.approve_project, True),
    "return": (services.return_project, True),
    "suspend": (services.suspend_project, True),
    "reinstate": (services.reinstate_project, True),
    "close": (services.close_project, True),
}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            ProjectFilterSerializer,
            OpenApiParameter(
                "in_bbox",
                {"type": "string", "pattern": BBOX_PATTERN},
                description=(
                    "west,south,east,north in degrees (EPSG:4326), west below "
                    "east and south below north."
                ),
            ),
        ]
    )
)
class ProjectViewSet(ApiViewSet):
    """Projects as GeoJSON. Anyone sees submitted and later projects; drafts
    only their owner's members and registry admins. Bureau staff create and
    edit drafts and submit them; registry admins take the other steps. The
    boundary is sent as GeoJSON (JSON body) or as ``boundary_file``
    (multipart: GeoJSON, KML, zipped Shapefile or GeoPackage, up to 20 MB)."""

    serializer_class = ProjectSerializer
    pagination_class = ProjectPagination
    filter_backends = [ProjectBBoxFilter]
    bbox_filter_field = "boundary"
    bbox_filter_include_overlapping = True
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    integer_lookup = False

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_queryset(self):
        filters = query_parameters(self.request, ProjectFilterSerializer)
        return (
            list_projects(user=self.request.user, **filters)
            .defer(None)
            .defer("county__boundary")
        )

    def _project(self) -> Project:
        project = get_project_for_user(user=self.request.user, code=self.lookup_value())
        if project is None:
            raise exceptions.NotFound()
        return project

    def _respond(self, project, status_code=status.HTTP_200_OK) -> Response:
        project = get_project_for_user(user=self.request.user, code=project.code)
        return Response(self.get_serializer(project).data, status=status_code)

    def list(self, request):
        projects = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(projects)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, code=None):
        return Response(self.get_serializer(self._project()).data)

    def _write_serializer(self, *, partial=False):
        serializer = ProjectWriteSerializer(
            data=self.request.data,
            partial=partial,
            context={"organizations": list_user_organizations(user=self.request.user)},
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=PROJECT_WRITE_BODIES, responses={201: ProjectSerializer})
    def create(self, request):
        if not has_role(request.user, Role.BUREAU_STAFF):
            raise exceptions.PermissionDenied(
                _("Only bureau staff can register projects.")
            )
        data = self._write_serializer()
        project = services.create_project(
            actor=request.user,
            details=_details(data, project=None),
            boundary=data["boundary"],
        )
        return self._respond(project, status.HTTP_201_CREATED)

    def _update(self, request, *, partial):
        project = self._project()
        if not can_edit_project(request.user, project):
            raise exceptions.PermissionDenied(_("You cannot edit this project."))
        data = self._write_serializer(partial=partial)
        services.update_project(
            actor=request.user,
            project=project,
            details=_details(data, project=project),
            boundary=data.get("boundary"),
        )
        return self._respond(project)

    @extend_schema(request=PROJECT_WRITE_BODIES, responses=ProjectSerializer)
    def update(self, request, code=None):
        return self._update(request, partial=False)

    @extend_schema(request=PROJECT_WRITE_BODIES, responses=ProjectSerializer)
    def partial_update(self, request, code=None):
        return self._update(request, partial=True)

    def _step(self, request, step):
        project = self._project()
        service, takes_reason = ACTIONS[step]
        reason = ReasonSerializer(data=request.data)
        reason.is_valid(raise_exception=True)
        arguments = {"actor": request.user, "project": project}
        if takes_reason:
            arguments["reason"] = reason.validated_data.get("reason", "")
        return self._respond(service(**arguments))

    @extend_schema(request=None, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, code=None):
        """Draft -> submitted (the owner's bureau staff); refused (409) while
        the boundary overlaps a live project."""
        return self._step(request, "submit")

    @extend_schema(request=ReasonSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, code=None):
        """Submitted -> registered (registry admin)."""
        return self._step(request, "approve")

    @extend_schema(request=ReasonSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"], url_path="return")
    def return_to_owner(self, request, code=None):
        """Submitted -> draft, with the reason the owner must address."""
        return self._step(request, "return")

    @extend_schema(request=ReasonSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, code=None):
        """Registered -> suspended, with a reason (registry admin)."""
        return self._step(request, "suspend")

    @extend_schema(request=ReasonSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def reinstate(self, request, code=None):
        """Suspended -> registered, with a reason (registry admin)."""
        return self._step(request, "reinstate")

    @extend_schema(request=ReasonSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, code=None):
        """Registered or suspended -> closed, with a reason (registry admin)."""
        return self._step(request, "close")


def _details(data: dict, *, project: Project | None) -> services.ProjectDetails:
    """The service's details: the given fields, the project's own for the rest
    (a partial update)."""
    values = {
        field: data[field] if field in data else getattr(project, field, "")
        for field in services.DETAIL_FIELDS
    }
    return services.ProjectDetails(**values)
