"""Estimation endpoints: land cover, schemes, methodologies, runs,
verification and issuance. Thin: parse input, call one service or selector."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.parsers import JSONParser
from api.viewsets import ApiViewSet
from common.quantities import share_from_percent
from estimation.api.serializers import (
    ClassSchemeSerializer,
    DecisionSerializer,
    EstimationRunSerializer,
    IssueSerializer,
    LandCoverDatasetSerializer,
    LandCoverUploadSerializer,
    MethodologySerializer,
    RunCreateSerializer,
    VerificationCreateSerializer,
    VerificationSerializer,
)
from estimation.selectors import (
    get_open_verification,
    get_run_for_user,
    get_verification_for_user,
    list_class_schemes,
    list_datasets,
    list_methodologies,
    list_runs,
    list_verifications,
)
from estimation.services.datasets import upload_landcover_dataset
from estimation.services.issuance import issue_verification
from estimation.services.runs import cancel_run, create_run, retry_run
from estimation.services.verification import (
    approve_verification,
    reject_verification,
    submit_for_verification,
)
from registry.models import Project
from registry.roles import Role
from registry.selectors import has_role, list_projects, list_user_organizations


class ReadMixin:
    """list and retrieve from ``get_queryset`` (a selector's answer)."""

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, **kwargs):
        return Response(self.get_serializer(self.get_object_or_404()).data)

    def get_object_or_404(self):
        found = (
            self.get_queryset()
            .filter(**{self.lookup_field: self.lookup_value()})
            .first()
        )
        if found is None:
            raise exceptions.NotFound()
        return found


class ClassSchemeViewSet(ReadMixin, ApiViewSet):
    """Public: how each land-cover product's class codes map to ecosystems."""

    serializer_class = ClassSchemeSerializer
    permission_classes = [AllowAny]
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    integer_lookup = False

    def get_queryset(self):
        return list_class_schemes()


class MethodologyViewSet(ReadMixin, ApiViewSet):
    """Public: methodology versions with their coefficients and citations."""

    serializer_class = MethodologySerializer
    permission_classes = [AllowAny]

    def get_queryset(self):
        return list_methodologies().prefetch_related("coefficients")


def _staff_required(user) -> None:
    if not (has_role(user, Role.BUREAU_STAFF) or has_role(user, Role.REGISTRY_ADMIN)):
        raise exceptions.PermissionDenied(_("Only bureau staff can run estimates."))


class LandCoverDatasetViewSet(ReadMixin, ApiViewSet):
    """Land-cover maps of the caller's organizations (all for registry admins);
    upload one as multipart/form-data."""

    serializer_class = LandCoverDatasetSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return list_datasets(user=self.request.user).order_by("-created_at", "-pk")

    @extend_schema(
        request={"multipart/form-data": LandCoverUploadSerializer},
        responses={201: LandCoverDatasetSerializer},
    )
    def create(self, request):
        _staff_required(request.user)
        upload = LandCoverUploadSerializer(
            data=request.data,
            context={"organizations": list_user_organizations(user=request.user)},
        )
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
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
        return Response(
            self.get_serializer(dataset).data, status=status.HTTP_201_CREATED
        )


class EstimationRunViewSet(ReadMixin, ApiViewSet):
    """Estimation runs of the caller's organizations (registry admins see all;
    verifiers also the runs submitted to them for verification). Creating one
    queues it; poll it for ``status`` and ``progress``, then read its
    ``results``."""

    serializer_class = EstimationRunSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        return list_runs(user=self.request.user).prefetch_related(
            "results", "code_areas"
        )

    def _run(self):
        run = get_run_for_user(user=self.request.user, pk=self.lookup_value())
        if run is None:
            raise exceptions.NotFound()
        return run

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._run()).data)

    @extend_schema(
        request=RunCreateSerializer, responses={201: EstimationRunSerializer}
    )
    def create(self, request):
        _staff_required(request.user)
        user = request.user
        serializer = RunCreateSerializer(
            data=request.data,
            context={
                "projects": list_projects(user=user)
                .filter(owner__memberships__user=user)
                .exclude(status=Project.Status.CLOSED)
                .defer(None),
                "datasets": list_datasets(user=user),
                "methodologies": list_methodologies(),
            },
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = create_run(
            actor=user,
            project=data["project"],
            dataset=data["dataset"],
            baseline_dataset=data.get("baseline_dataset"),
            methodology=data["methodology"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            price_cny_per_t_co2e=data.get("price_cny_per_t_co2e"),
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: EstimationRunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed run again: a new run with the same inputs and
        fingerprint, its ``retry_of`` the failed run, which is kept as it is
        (409 ``run_not_failed`` for a run that did not fail). Who may: whoever
        may create a run for its organization."""
        retry = retry_run(actor=request.user, run=self._run())
        found = get_run_for_user(user=request.user, pk=retry.pk)
        return Response(self.get_serializer(found).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EstimationRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running run: a queued run is never started, a
        running one stops at its next progress report and stores nothing
        (409 ``run_not_active`` for a run that has ended). Who may: whoever
        may create a run for its organization."""
        run = cancel_run(actor=request.user, run=self._run())
        found = get_run_for_user(user=request.user, pk=run.pk)
        return Response(self.get_serializer(found).data)

    @extend_schema(request=IssueSerializer, responses=VerificationSerializer)
    @action(detail=True, methods=["post"])
    def issue(self, request, pk=None):
        """Issue the run's approved verification as a credit batch (registry
        admin). Credits are issued for a verification, not for a bare run: this
        takes the run's one open verification, which must be approved; the
        answer is that verification with its new batch."""
        run = self._run()
        serializer = IssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not has_role(request.user, Role.REGISTRY_ADMIN):
            raise exceptions.PermissionDenied(
                _("Only a registry admin can issue credits.")
            )
        verification = get_open_verification(run=run)
        if verification is None:
            raise exceptions.ValidationError(
                exceptions.ErrorDetail(
                    _(
                        "Run #%(run)s has no verification to issue: submit it for "
                        "verification and have it approved first."
                    )
                    % {"run": run.pk},
                    code="not_verified",
                )
            )
        percent = serializer.validated_data.get("buffer_share_percent")
        verification = issue_verification(
            actor=request.user,
            verification=verification,
            buffer_share=None if percent is None else share_from_percent(percent),
            buffer_share_reason=serializer.validated_data.get(
                "buffer_share_reason", ""
            ),
        )
        found = get_verification_for_user(user=request.user, pk=verification.pk)
        return Response(VerificationSerializer(found).data)


class VerificationViewSet(ReadMixin, ApiViewSet):
    """Verifications: bureau staff submit a finished run of a registered
    project; a verifier of another organization approves or rejects it."""

    serializer_class = VerificationSerializer

    def get_queryset(self):
        return list_verifications(user=self.request.user)

    def _verification(self):
        verification = get_verification_for_user(
            user=self.request.user, pk=self.lookup_value()
        )
        if verification is None:
            raise exceptions.NotFound()
        return verification

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._verification()).data)

    def _respond(self, verification, status_code=status.HTTP_200_OK):
        found = get_verification_for_user(user=self.request.user, pk=verification.pk)
        return Response(self.get_serializer(found).data, status=status_code)

    @extend_schema(
        request=VerificationCreateSerializer, responses={201: VerificationSerializer}
    )
    def create(self, request):
        user = request.user
        serializer = VerificationCreateSerializer(
            data=request.data,
            context={
                "runs": list_runs(user=user).defer(None),
                "verifications": list_verifications(user=user),
            },
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        verification = submit_for_verification(
            actor=user,
            run=data["run"],
            monitoring_start=data.get("monitoring_start"),
            monitoring_end=data.get("monitoring_end"),
            note=data.get("note", ""),
            revises=data.get("revises"),
        )
        return self._respond(verification, status.HTTP_201_CREATED)

    def _decide(self, request, service):
        verification = self._verification()
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verification = service(
            actor=request.user,
            verification=verification,
            reasons=serializer.validated_data.get("reasons", ""),
        )
        return self._respond(verification)

    @extend_schema(request=DecisionSerializer, responses=VerificationSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """The verifier confirms the calculation."""
        return self._decide(request, approve_verification)

    @extend_schema(request=DecisionSerializer, responses=VerificationSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """The verifier refuses it, with the reasons (required)."""
        return self._decide(request, reject_verification)
