"""Estimation runs: create (fingerprint the inputs, freeze the methodology
version), execute (measure, compute, store the table) and new methodology
versions. A run's inputs are fingerprinted before it starts
(``estimation.fingerprints``, the same path ``manage.py estimate`` takes);
``execute_run`` is safe to deliver twice: only the attempt that claimed a
queued run computes it and stores its results.

Runs always end. Queuing is an outbox: the run row is written first and the
task is sent after commit; a broker that is down leaves the run queued, and
``redispatch_queued_runs`` sends it again. Any exception ends a run as failed
with a translated reason. A run whose worker went silent (no heartbeat) is
re-queued once by ``sweep_stale_runs``, then failed with an alert. Staff cancel
a queued or running run (``cancel_run``): the worker sees it at the next
progress report (after each batch of survey patches, each raster window) and
stops; its results are discarded."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import kombu.exceptions
import redis.exceptions
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext as _

from common import quantities
from common.errors import StateConflict, checked
from estimation import area, calculations, fingerprints, landuse, maps
from estimation.errors import (
    area_error_message,
    calculation_error_message,
    run_failure_message,
)
from estimation.models import (
    ClassScheme,
    Coefficient,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    SurveyCodeArea,
)
from estimation.selectors import dataset_inputs, methodology_inputs, scheme_lookup
from estimation.services import measurement
from estimation.services.permissions import require_staff_of
from registry.models import Organization, Project, User
from registry.roles import Role
from registry.selectors import has_role

logger = logging.getLogger(__name__)

PROGRESS_STEP = 5  # percent between progress writes
# The roles of a run's maps (a stock-difference run has a baseline too).
CURRENT, BASELINE = "current", "baseline"
# A run is computed at most this many times: the first attempt and one more
# after its worker was lost; then the sweep fails it.
MAX_ATTEMPTS = 2
# What sending a task raises while the broker is down or unreachable.
BROKER_ERRORS = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


@transaction.atomic
def create_run(
    *,
    actor: User,
    dataset: LandCoverDataset,
    methodology: Methodology,
    period_start: date,
    period_end: date,
    project: Project | None = None,
    boundary: MultiPolygon | None = None,
    organization: Organization | None = None,
    price_cny_per_t_co2e: Decimal | str | None = None,
    baseline_dataset: LandCoverDataset | None = None,
) -> EstimationRun:
    """Queue an estimate of ``project``'s boundary (or an ad-hoc ``boundary`` for
    ``organization``); freezes the methodology version; the task starts once the
    transaction commits."""
    if project is not None:
        organization, boundary = project.owner, project.boundary
    if organization is None or boundary is None:
        raise ValidationError(
            _("Choose a project or give a boundary."), code="boundary"
        )
    require_staff_of(actor, organization)
    if price_cny_per_t_co2e in ("", None):
        price_cny_per_t_co2e = None
    else:
        price_cny_per_t_co2e = checked(
            quantities.parse_price,
            price_cny_per_t_co2e,
            field="price_cny_per_t_co2e",
            currency="CNY",
        )
    if period_end < period_start:
        raise ValidationError(
            {"period_end": _("The monitoring period must end after it starts.")}
        )
    if (
        methodology.kind == Methodology.Kind.STOCK_DIFFERENCE
        and baseline_dataset is None
    ):
        raise ValidationError(
            {
                "baseline_dataset": _(
                    "The stock-difference method needs a baseline land-cover map."
                )
            }
        )
    inputs = fingerprints.estimate_inputs(
        boundary_wkb=bytes(boundary.wkb),
        landcover=dataset_inputs(dataset),
        baseline=dataset_inputs(baseline_dataset),
        methodology=methodology_inputs(methodology),
        period=(period_start, period_end),
        price=price_cny_per_t_co2e,
    )
    run = EstimationRun(
        project=project,
        organization=organization,
        boundary=boundary,
        dataset=dataset,
        baseline_dataset=baseline_dataset,
        methodology=methodology,
        period_start=period_start,
        period_end=period_end,
        price_cny_per_t_co2e=price_cny_per_t_co2e,
        inputs=inputs,
        fingerprint=fingerprints.fingerprint(inputs),
        created_by=actor,
        queued_at=timezone.now(),
    )
    run.full_clean()
    run.save()
    if methodology.frozen_at is None:
        Methodology.objects.filter(pk=methodology.pk, frozen_at=None).update(
            frozen_at=timezone.now()
        )
    _dispatch_on_commit(run.pk)
    return run


def _dispatch_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: dispatch_run(run_id), robust=True)


def dispatch_run(run_id: int) -> bool:
    """Hand a queued run to the broker. A broker that is down is logged and the
    run stays queued for ``redispatch_queued_runs``: the caller still gets its
    answer. True if the broker took it."""
    from estimation.tasks import execute_run_task  # the task imports this module

    try:
        execute_run_task.delay(run_id)
    except BROKER_ERRORS:
        logger.exception(
            "Estimation run %s could not be sent to the broker; it stays queued "
            "and is sent again once the broker answers.",
            run_id,
        )
        return False
    return True


def redispatch_queued_runs(*, now=None) -> int:
    """Send again the queued runs that no worker took within
    ``ESTIMATION_RUN_DISPATCH_GRACE`` minutes (the broker was down, or lost the
    message). Harmless if the first message arrives after all: a worker
    computes only a run that is still queued. Returns how many were sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ESTIMATION_RUN_DISPATCH_GRACE)
    waiting = list(
        EstimationRun.objects.filter(status=EstimationRun.Status.QUEUED)
        .filter(
            Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True, created_at__lt=cutoff)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    sent = 0
    for run_id in waiting:
        if not dispatch_run(run_id):
            break  # still down: this run and the rest are due at the next pass
        EstimationRun.objects.filter(
            pk=run_id, status=EstimationRun.Status.QUEUED
        ).update(queued_at=now)
        sent += 1
    if waiting:
        logger.warning("Re-sent %s of %s waiting estimation runs.", sent, len(waiting))
    return sent


class RunStopped(Exception):
    """The run is no longer this attempt's to compute: stop and store nothing."""


class RunCancelled(RunStopped):
    """The run was cancelled while it was computed."""


class RunEnded(RunStopped):
    """The run ended (failed: a part of it did, or the sweep gave up on it)
    while this attempt computed."""


class _Progress:
    """Writes a run's progress every PROGRESS_STEP percent, and its heartbeat at
    least every ESTIMATION_RUN_HEARTBEAT_SECONDS while the engine reports; only
    while this attempt still owns the run. Raises RunCancelled once the run has
    been cancelled, RunEnded once it has ended otherwise (a sibling part failed
    it), which stops the engine at that report."""

    def __init__(self, run_id: int, attempt: int, *, writes_percent: bool = True):
        self.run_id, self.attempt = run_id, attempt
        self.percent = 0
        self.beaten = time.monotonic()
        self.interval = settings.ESTIMATION_RUN_HEARTBEAT_SECONDS
        # A part of a run measured in parts beats only: the run's percent
        # counts the parts done.
        self.step = PROGRESS_STEP if writes_percent else 101

    def __call__(self, fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        now = time.monotonic()
        if percent < self.percent + self.step and now - self.beaten < self.interval:
            return
        self.beaten = now
        changes = {"heartbeat_at": timezone.now()}
        if self.step <= 100:
            self.percent = changes["progress"] = max(self.percent, percent)
        written = EstimationRun.objects.filter(
            pk=self.run_id, status=EstimationRun.Status.RUNNING, attempts=self.attempt
        ).update(**changes)
        # Only when the write missed is it worth asking why: a cancellation (or
        # a sibling part's failure) is seen at the next progress write, not
        # with a query per report.
        if not written:
            status = (
                EstimationRun.objects.filter(pk=self.run_id)
                .values_list("status", flat=True)
                .first()
            )
            if status == EstimationRun.Status.CANCELLED:
                raise RunCancelled(self.run_id)
            if status in (EstimationRun.Status.FAILED, EstimationRun.Status.SUCCEEDED):
                raise RunEnded(self.run_id)
            # handed on to a later attempt: this one finishes, and
            # _store_results discards what it found


def flux_estimate(
    *,
    by_code_ha: dict[str, Decimal],
    scheme: ClassScheme,
    methodology: Methodology,
    years: Decimal,
    price: Decimal | None,
) -> calculations.SinkEstimate:
    by_ecosystem, unmapped = calculations.map_to_ecosystems(
        by_code_ha, scheme_lookup(scheme)
    )
    return calculations.flux_sink(
        by_ecosystem,
        flux_coefficients(methodology),
        years=years,
        price_cny_per_t_co2e=price,
        unmapped_codes_ha=unmapped,
    )


def flux_coefficients(methodology: Methodology) -> dict[str, calculations.Coefficient]:
    return {
        c.ecosystem: calculations.Coefficient(c.value, c.unit, c.sign)
        for c in methodology.coefficients.filter(basis=Coefficient.Basis.FLUX)
    }


def _stock_pools(methodology: Methodology) -> dict[str, dict[str, Decimal]]:
    pools: dict[str, dict[str, Decimal]] = {}
    for c in methodology.coefficients.filter(basis=Coefficient.Basis.STOCK):
        value = (
            c.value
            if c.unit == Coefficient.Unit.T_C
            else c.value / calculations.CO2_PER_C
        )
        pools.setdefault(c.ecosystem, {})[c.pool] = value
    return pools


def execute_run(*, run_id: int) -> EstimationRun:
    """Compute a queued run and store its table. Any failure ends the run as
    failed with a translated reason (and, unless it lies in the inputs, an
    ERROR log). Only a queued run is taken (a run already started by another
    attempt, or finished, is returned as it is); the attempt that takes it is
    the only one whose results are stored. A run larger than one part
    (``measurement.plan_parts``) is handed to several workers instead: its
    parts are measured by ``measure_run_part`` and it ends in
    ``finish_run_in_parts``."""
    run = _claim(run_id)
    if run is None:
        return EstimationRun.objects.get(pk=run_id)
    attempt = run.attempts
    with _failing_the_run(run.pk, attempt):
        datasets = _datasets(run)
        planned = [
            (role, part)
            for role, dataset in datasets.items()
            for part in measurement.plan_parts(dataset, run.boundary)
        ]
        if len(planned) > len(datasets):
            _measure_in_parts(run.pk, attempt, planned)
        elif _store_results(run, attempt, *_compute(run, _Progress(run.pk, attempt))):
            store_landcover_picture(run.pk)
    return EstimationRun.objects.get(pk=run_id)


@contextmanager
def _failing_the_run(run_id: int, attempt: int) -> Iterator[None]:
    """Whatever is raised inside ends the run as failed (this attempt's), with
    a translated reason; a cancelled run just stops."""
    try:
        yield
    except RunCancelled:
        logger.info("Estimation run %s was cancelled; it stopped.", run_id)
    except RunEnded:
        logger.info(
            "Estimation run %s ended while attempt %s computed; the attempt stopped.",
            run_id,
            attempt,
        )
    except (
        area.AreaError,
        calculations.CalculationError,
        landuse.LandUseError,
    ) as error:
        message = (
            calculation_error_message(error)
            if isinstance(error, calculations.CalculationError)
            else area_error_message(error)
        )
        _fail(run_id, attempt, code=error.code, message=message)
    except Exception as error:  # whatever it is, the run must end
        logger.exception("Estimation run %s (attempt %s) failed.", run_id, attempt)
        code = failure_code(error)
        _fail(run_id, attempt, code=code, message=run_failure_message(code))


def _measure_in_parts(run_id: int, attempt: int, planned: list[tuple[str, dict]]):
    """Send each part to the workers, and the run's finish once all are
    measured (a Celery chord: the results meet in the result backend)."""
    from celery import chord

    from estimation.tasks import finish_run_in_parts_task, measure_run_part_task

    EstimationRun.objects.filter(
        pk=run_id, status=EstimationRun.Status.RUNNING, attempts=attempt
    ).update(parts_total=len(planned), parts_done=0)
    logger.info("Estimation run %s is measured in %s parts.", run_id, len(planned))
    roles = [role for role, _part in planned]
    chord(
        measure_run_part_task.s(run_id, attempt, role, part) for role, part in planned
    )(finish_run_in_parts_task.s(run_id, attempt, roles))


def measure_run_part(
    *, run_id: int, attempt: int, role: str, part: dict
) -> dict | None:
    """The exact sums of one part of a run's map, or None if the run is no
    longer this attempt's (failed, cancelled or handed on) or this part fails
    (which fails the run)."""
    run = EstimationRun.objects.select_related("dataset", "baseline_dataset").get(
        pk=run_id
    )
    if run.status != EstimationRun.Status.RUNNING or run.attempts != attempt:
        return None
    sums = None
    with _failing_the_run(run_id, attempt):
        dataset = _datasets(run)[role]
        progress = _Progress(run_id, attempt, writes_percent=False)
        sums = measurement.measure_part(dataset, run.boundary, part, progress)
        EstimationRun.objects.filter(
            pk=run_id, status=EstimationRun.Status.RUNNING, attempts=attempt
        ).update(
            parts_done=F("parts_done") + 1,
            progress=Least(99, (F("parts_done") + 1) * 99 / F("parts_total")),
            heartbeat_at=timezone.now(),
        )
    return sums


def finish_run_in_parts(
    *, run_id: int, attempt: int, roles: list[str], sums: list[dict | None]
) -> EstimationRun:
    """Add up the parts' sums (in ``roles``' order) and store the run's table,
    as ``execute_run`` would have: the very same numbers."""
    run = EstimationRun.objects.get(pk=run_id)
    if (
        None in sums
        or run.status != EstimationRun.Status.RUNNING
        or run.attempts != attempt
    ):
        return run  # a part failed it, it was cancelled or handed on
    with _failing_the_run(run_id, attempt):
        measured = {
            role: measurement.combine_parts(
                dataset,
                run.boundary,
                [part for part, of in zip(sums, roles, strict=True) if of == role],
            )
            for role, dataset in _datasets(run).items()
        }
        if _store_results(run, attempt, *_estimate(run, measured)):
            store_landcover_picture(run.pk)
    return EstimationRun.objects.get(pk=run_id)


def failure_code(error: BaseException) -> str:
    """The stored code for an unexpected exception (the reason shown is
    ``estimation.errors.RUN_FAILURE_MESSAGES``)."""
    if isinstance(error, SoftTimeLimitExceeded):
        return "time_limit"
    if isinstance(error, MemoryError):
        return "out_of_memory"
    if isinstance(error, DatabaseError):
        return "database_error"
    if isinstance(error, OSError):
        return "io_error"
    return "internal_error"


@transaction.atomic
def _claim(run_id: int) -> EstimationRun | None:
    """Take a queued run for one more attempt; None if it is not queued."""
    run = EstimationRun.objects.select_for_update().get(pk=run_id)
    if run.status != EstimationRun.Status.QUEUED:
        logger.info("Estimation run %s is %s: not started again.", run_id, run.status)
        return None
    now = timezone.now()
    run.status = EstimationRun.Status.RUNNING
    run.attempts += 1
    run.started_at = run.heartbeat_at = now
    run.progress = run.parts_total = run.parts_done = 0
    run.save(
        update_fields=[
            "status",
            "attempts",
            "started_at",
            "heartbeat_at",
            "progress",
            "parts_total",
            "parts_done",
        ]
    )
    return run


def _fail(run_id: int, attempt: int, *, code: str, message: str) -> None:
    """End this attempt's run as failed (a later attempt that took the run over
    is left alone). If even that write fails, the run stays running and the
    sweep ends it once its heartbeat is stale."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()  # a broken connection reconnects
    now = timezone.now()
    try:
        EstimationRun.objects.filter(
            pk=run_id, status=EstimationRun.Status.RUNNING, attempts=attempt
        ).update(
            status=EstimationRun.Status.FAILED,
            error_code=code,
            error_message=message,
            finished_at=now,
            heartbeat_at=now,
        )
    except DatabaseError:
        logger.exception(
            "Estimation run %s failed and the failure could not be recorded; the "
            "sweep will end it.",
            run_id,
        )


def store_landcover_picture(run_id: int) -> None:
    """Draw a succeeded raster run's land-cover picture and keep it on the run
    (pages serve the stored file). A picture that cannot be drawn is logged;
    the run's results stand."""
    run = EstimationRun.objects.select_related("dataset__scheme").get(pk=run_id)
    if (
        run.status != EstimationRun.Status.SUCCEEDED
        or run.dataset.kind != LandCoverDataset.Kind.RASTER
    ):
        return
    try:
        png = maps.render_landcover_png(run, colours=maps.ECOSYSTEM_COLOURS)
        run.landcover_picture.save(
            f"run-{run.pk}-landcover.png", ContentFile(png), save=False
        )
    except Exception:  # a missing picture must not fail the run
        logger.exception("The land-cover picture of run %s could not be made.", run_id)
        return
    EstimationRun.objects.filter(pk=run.pk).update(
        landcover_picture=run.landcover_picture.name
    )


def sweep_stale_runs(*, now=None) -> dict[str, list[int]]:
    """Running runs whose worker gave no sign of life for
    ``ESTIMATION_RUN_STALE_AFTER`` minutes: re-queued for a second attempt, or
    failed (with an alert to the registry admins) if that was the second. A run
    measured in parts waits ``ESTIMATION_PARTS_STALE_AFTER`` minutes: its
    parts may queue behind other work, and nothing beats while they wait."""
    now = now or timezone.now()
    cutoffs = _stale_cutoffs(now)
    stale = list(
        EstimationRun.objects.filter(status=EstimationRun.Status.RUNNING)
        .filter(
            Q(parts_total=0, heartbeat_at__lt=cutoffs[False])
            | Q(parts_total__gt=0, heartbeat_at__lt=cutoffs[True])
            | Q(heartbeat_at__isnull=True, started_at__lt=cutoffs[False])
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    swept: dict[str, list[int]] = {"requeued": [], "failed": []}
    for run_id in stale:
        outcome = _sweep_one(run_id, cutoffs=cutoffs, now=now)
        if outcome is not None:
            swept[outcome].append(run_id)
    return swept


def _stale_cutoffs(now) -> dict[bool, object]:
    """The last sign of life a run must have given, by whether it is in parts."""
    return {
        False: now - timedelta(minutes=settings.ESTIMATION_RUN_STALE_AFTER),
        True: now - timedelta(minutes=settings.ESTIMATION_PARTS_STALE_AFTER),
    }


@transaction.atomic
def _sweep_one(run_id: int, *, cutoffs, now) -> str | None:
    run = EstimationRun.objects.select_for_update().get(pk=run_id)
    last_sign = run.heartbeat_at or run.started_at
    if run.status != EstimationRun.Status.RUNNING or (
        last_sign is not None and last_sign >= cutoffs[run.parts_total > 0]
    ):
        return None  # it moved on since it was listed
    if run.attempts < MAX_ATTEMPTS:
        run.status = EstimationRun.Status.QUEUED
        run.progress = 0
        run.queued_at = now
        run.save(update_fields=["status", "progress", "queued_at"])
        _dispatch_on_commit(run.pk)
        logger.warning(
            "Estimation run %s: no heartbeat since %s (attempt %s); re-queued.",
            run.pk,
            last_sign,
            run.attempts,
        )
        return "requeued"
    run.status = EstimationRun.Status.FAILED
    run.error_code = "worker_lost"
    run.error_message = run_failure_message("worker_lost")
    run.finished_at = now
    run.save(update_fields=["status", "error_code", "error_message", "finished_at"])
    logger.error(
        "Estimation run %s failed: its worker stopped (no heartbeat since %s, "
        "attempt %s of %s).",
        run.pk,
        last_sign,
        run.attempts,
        MAX_ATTEMPTS,
    )
    _alert_run_failed_by_sweep(run)
    return "failed"


def _alert_run_failed_by_sweep(run: EstimationRun) -> None:
    from registry.models import Alert
    from registry.services import raise_alert

    raise_alert(
        kind=Alert.Kind.RUN_FAILED_BY_SWEEP,
        key=f"run:{run.pk}",
        params={"run": run.pk, "attempts": run.attempts, "reason": run.error_code},
    )


@transaction.atomic
def retry_run(*, actor: User, run: EstimationRun) -> EstimationRun:
    """A new run with the failed run's inputs and fingerprint, linked to it
    (``retry_of``); the failed run is kept as it is. Who may: whoever may
    create a run for its organization."""
    require_staff_of(actor, run.organization)
    failed = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if failed.status != EstimationRun.Status.FAILED:
        raise StateConflict(
            _("Run #%(run)s has not failed: only a failed run can be retried.")
            % {"run": failed.pk},
            code="run_not_failed",
        )
    pending = (
        failed.retries.exclude(status=EstimationRun.Status.FAILED)
        .order_by("pk")
        .first()
    )
    if pending is not None:
        raise StateConflict(
            _("Run #%(run)s has already been retried as run #%(retry)s.")
            % {"run": failed.pk, "retry": pending.pk},
            code="already_retried",
        )
    if _fingerprint_for_retry(failed) != failed.fingerprint:
        raise StateConflict(
            _(
                "The inputs of run #%(run)s have changed since it was made (its "
                "land-cover map, class scheme or methodology): make a new run "
                "instead."
            )
            % {"run": failed.pk},
            code="inputs_changed",
        )
    retry = EstimationRun.objects.create(
        project=failed.project,
        organization=failed.organization,
        boundary=failed.boundary,
        dataset=failed.dataset,
        baseline_dataset=failed.baseline_dataset,
        methodology=failed.methodology,
        period_start=failed.period_start,
        period_end=failed.period_end,
        price_cny_per_t_co2e=failed.price_cny_per_t_co2e,
        inputs=failed.inputs,
        fingerprint=failed.fingerprint,
        created_by=actor,
        retry_of=failed,
        queued_at=timezone.now(),
    )
    _dispatch_on_commit(retry.pk)
    return retry


@transaction.atomic
def cancel_run(*, actor: User, run: EstimationRun) -> EstimationRun:
    """Cancel a queued or running run. A queued run is never started; a running
    one stops at its next progress report and stores nothing. Who may:
    whoever may create a run for its organization."""
    require_staff_of(actor, run.organization)
    locked = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if locked.status not in EstimationRun.ACTIVE_STATUSES:
        raise StateConflict(
            _(
                "Run #%(run)s is no longer queued or running: only those can be "
                "cancelled."
            )
            % {"run": locked.pk},
            code="run_not_active",
        )
    locked.status = EstimationRun.Status.CANCELLED
    locked.cancelled_by = actor
    locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "cancelled_by", "finished_at"])
    return locked


def _fingerprint_for_retry(run: EstimationRun) -> str:
    """The fingerprint a new run of the same boundary (as the run stored it)
    would get now, with this engine."""
    return fingerprints.fingerprint(
        fingerprints.estimate_inputs(
            boundary_wkb=bytes(run.boundary.wkb),
            landcover=dataset_inputs(run.dataset),
            baseline=dataset_inputs(run.baseline_dataset),
            methodology=methodology_inputs(run.methodology),
            period=(run.period_start, run.period_end),
            price=run.price_cny_per_t_co2e,
        )
    )


def _datasets(run: EstimationRun) -> dict[str, LandCoverDataset]:
    """The maps a run measures, by role: the current one, and for a
    stock-difference run the baseline too (measured first)."""
    if run.methodology.kind == Methodology.Kind.FLUX:
        return {CURRENT: run.dataset}
    return {BASELINE: run.baseline_dataset, CURRENT: run.dataset}


def _compute(run: EstimationRun, progress):
    datasets = _datasets(run)
    share = 1 / len(datasets)
    measured = {}
    for k, (role, dataset) in enumerate(datasets.items()):
        offset = k * share
        measured[role] = measurement.dataset_classes(
            dataset,
            run.boundary,
            lambda fraction, offset=offset: progress(offset + fraction * share),
        )
    return _estimate(run, measured)


def _estimate(run: EstimationRun, measured: dict[str, measurement.Measured]):
    """The run's estimate from the areas measured on each of its maps; the
    parts of the boundary (no-data, outside, code areas) of the current one."""
    years = calculations.period_years(run.period_start, run.period_end)
    by_code, parts = measured[CURRENT]
    if run.methodology.kind == Methodology.Kind.FLUX:
        estimate = flux_estimate(
            by_code_ha=by_code,
            scheme=run.dataset.scheme,
            methodology=run.methodology,
            years=years,
            price=run.price_cny_per_t_co2e,
        )
        return estimate, parts
    base_codes, _base_parts = measured[BASELINE]
    base, base_unmapped = calculations.map_to_ecosystems(
        base_codes, scheme_lookup(run.baseline_dataset.scheme)
    )
    alternate, unmapped = calculations.map_to_ecosystems(
        by_code, scheme_lookup(run.dataset.scheme)
    )
    for code, ha in base_unmapped.items():
        unmapped[code] = unmapped.get(code, Decimal(0)) + ha
    estimate = calculations.stock_change_estimate(
        baseline_ha=base,
        alternate_ha=alternate,
        pools_by_ecosystem=_stock_pools(run.methodology),
        years=years,
        price_cny_per_t_co2e=run.price_cny_per_t_co2e,
        unmapped_codes_ha=unmapped,
    )
    return estimate, parts


@transaction.atomic
def _store_results(run: EstimationRun, attempt: int, estimate, parts: dict) -> bool:
    """Store the table if this attempt still owns the run (the sweep may have
    handed it to another); False if it does not."""
    run = EstimationRun.objects.select_for_update().get(pk=run.pk)
    if run.status == EstimationRun.Status.CANCELLED:
        logger.info("Estimation run %s was cancelled: no results stored.", run.pk)
        return False
    if run.status != EstimationRun.Status.RUNNING or run.attempts != attempt:
        logger.warning(
            "Estimation run %s: attempt %s finished after the run was handed on "
            "(now %s, attempt %s); its results are discarded.",
            run.pk,
            attempt,
            run.status,
            run.attempts,
        )
        return False
    run.results.all().delete()
    EcosystemResult.objects.bulk_create(
        EcosystemResult(
            run=run,
            ecosystem=row.ecosystem,
            rank=row.rank,
            area_ha=row.area_ha,
            share=row.share,
            coefficient=row.coefficient,
            coefficient_unit=row.coefficient_unit,
            sink_t_c_per_year=row.sink_t_c_per_year,
            sink_t_co2e_per_year=row.sink_t_co2e_per_year,
            sink_t_co2e_period=row.sink_t_co2e_period,
            value_cny_per_year=row.value_cny_per_year,
        )
        for row in estimate.ecosystems
    )
    run.boundary_area_ha = quantities.rounded(parts["boundary"], quantities.AREA_PLACES)
    run.covered_area_ha = estimate.totals.area_ha + sum(
        estimate.unmapped_codes_ha.values(), Decimal(0)
    )
    run.nodata_area_ha = quantities.rounded(parts["nodata"], quantities.AREA_PLACES)
    run.outside_area_ha = quantities.rounded(parts["outside"], quantities.AREA_PLACES)
    run.unmapped_codes = {
        code: str(ha) for code, ha in estimate.unmapped_codes_ha.items()
    }
    run.repaired_patches = parts["repaired_patches"]
    run.code_areas.all().delete()
    SurveyCodeArea.objects.bulk_create(
        SurveyCodeArea(
            run=run,
            code=code,
            name=name[:200],
            area_ha=quantities.rounded(ha, quantities.AREA_PLACES),
        )
        for code, name, ha in parts.get("code_areas", [])
    )
    run.years = estimate.years
    run.total_t_c_per_year = estimate.totals.sink_t_c_per_year
    run.total_t_co2e_per_year = estimate.totals.sink_t_co2e_per_year
    run.total_t_co2e_period = estimate.totals.sink_t_co2e_period
    run.total_value_cny_per_year = estimate.totals.value_cny_per_year
    run.total_value_cny_period = estimate.totals.value_cny_period
    run.status = EstimationRun.Status.SUCCEEDED
    run.progress = 100
    run.finished_at = run.heartbeat_at = timezone.now()
    run.save()
    return True


@transaction.atomic
def new_methodology_version(*, actor: User, methodology: Methodology) -> Methodology:
    """Copy a methodology, with its coefficients, as the next version (editable
    until it is first used)."""
    if not has_role(actor, Role.REGISTRY_ADMIN):
        raise PermissionDenied(_("Only a registry admin can do this."))
    latest = (
        Methodology.objects.filter(slug=methodology.slug).order_by("-version").first()
    )
    copy = Methodology.objects.get(pk=methodology.pk)
    coefficients = list(methodology.coefficients.all())
    copy.pk = None
    copy.version = latest.version + 1
    copy.is_default = False
    copy.frozen_at = None
    copy.save()
    for coefficient in coefficients:
        coefficient.pk = None
        coefficient.methodology = copy
    Coefficient.objects.bulk_create(coefficients)
    return copy
