"""``kill -9`` of a Celery worker in the middle of an estimation run, the
prefork pool's child and, separately, the main process: the run is re-queued
by the sweep and completes exactly once (its table stored once), within a
bound the test asserts.

The sweep acts once a run's heartbeat is ESTIMATION_RUN_STALE_AFTER minutes
old. Rather than wait those real minutes, the test moves the dead run's last
heartbeat back (as the clock would), and beat's sweep, every second here,
does the rest; in production the recovery takes that many minutes more."""

import os
import signal
import time

import numpy as np
import pytest
import shapely
from pyogrio.raw import write

from tests.faults.stack import wait_until

pytestmark = pytest.mark.production_stack

# A land-use layer measured by a paced worker (a pause after each chunk), so a
# run lasts some seconds however fast the area engine is.
GRID = 160
STEP_DEG = 0.0002
BOUNDARY_SIDE_M = 3500
RECOVERY_BOUND_SECONDS = 60.0
ECOSYSTEMS = 2  # forest and farmland


def write_land_use(path):
    xs, ys = np.meshgrid(
        np.arange(GRID) * STEP_DEG + 105.6, np.arange(GRID) * STEP_DEG + 27.1
    )
    boxes = shapely.box(
        xs.ravel(), ys.ravel(), xs.ravel() + STEP_DEG, ys.ravel() + STEP_DEG
    )
    codes = np.where(np.arange(GRID * GRID) % 2 == 0, "2", "12").astype(object)
    write(
        str(path),
        shapely.to_wkb(boxes),
        field_data=[codes],
        fields=["code"],
        crs="EPSG:4326",
        geometry_type="Polygon",
        driver="GPKG",
    )
    return path


@pytest.fixture
def estimating(stack, tmp_path):
    seeded = stack.django(
        "seed_estimation",
        raster=str(write_land_use(tmp_path / "land-use.gpkg")),
        boundary_side_m=BOUNDARY_SIDE_M,
        class_field="code",
    )
    timings = {
        "ESTIMATION_RUN_STALE_AFTER": 2,
        "ESTIMATION_RUN_HEARTBEAT_SECONDS": 1,
        "ESTIMATION_RUN_SWEEP_INTERVAL": 1,
        "ESTIMATION_RUN_DISPATCH_GRACE": 1,
    }
    stack.extra_env.update({key: str(value) for key, value in timings.items()})
    stack.beat()
    return seeded


def run_state(stack, run_id):
    return stack.django("runs", ids=[run_id])[str(run_id)]


def start_run_and_wait_until_computing(stack, seeded):
    run_id = stack.django(
        "create_run",
        staff=seeded["staff"],
        project=seeded["project"],
        dataset=seeded["dataset"],
    )["run"]
    wait_until(
        lambda: run_state(stack, run_id)["progress"] >= 5,
        timeout=60,
        what="the run to be under way",
        interval=0.3,
    )
    return run_id


def recover(stack, run_id, killed_at):
    """Let the sweep see the dead run as stale; wait for it to finish."""
    state = run_state(stack, run_id)
    if state["status"] == "running":
        stack.django("backdate_heartbeat", run=run_id, minutes=3)
    final = wait_until(
        lambda: (
            (s := run_state(stack, run_id))["status"] in ("succeeded", "failed") and s
        ),
        timeout=RECOVERY_BOUND_SECONDS,
        what="the run to end",
        interval=0.5,
    )
    return final, time.monotonic() - killed_at


def test_kill_9_of_the_pool_child_mid_run(stack, estimating):
    worker = stack.worker(paced=True)
    run_id = start_run_and_wait_until_computing(stack, estimating)
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    assert run_state(stack, run_id)["status"] == "running"
    final, took = recover(stack, run_id, killed_at)
    assert final["status"] == "succeeded", final
    assert final["attempts"] == 2, final  # re-queued once, computed once more
    assert final["results"] == ECOSYSTEMS, final  # stored once
    assert took < RECOVERY_BOUND_SECONDS
    assert worker.alive()  # the main process replaced its child
    stack.verify_ledger()
    print(f"worker child killed: run {run_id} succeeded {took:.1f}s after the kill")


def test_kill_9_of_the_worker_main_process_mid_run(stack, estimating):
    worker = stack.worker(paced=True)
    run_id = start_run_and_wait_until_computing(stack, estimating)
    worker.kill9()
    killed_at = time.monotonic()
    # The supervisor (docker compose's restart policy) starts a new worker.
    stack.worker(name="worker2", paced=True)
    final, took = recover(stack, run_id, killed_at)
    assert final["status"] == "succeeded", final
    assert final["attempts"] in (1, 2), final
    assert final["results"] == ECOSYSTEMS, final  # one table, whoever stored it
    assert took < RECOVERY_BOUND_SECONDS
    stack.verify_ledger()
    print(
        f"worker main killed: run {run_id} succeeded {took:.1f}s after the kill "
        f"(attempt {final['attempts']})"
    )
