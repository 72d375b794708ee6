"""Redis stopped while users create runs and browse: pages and the API keep
working (the cache answers as a miss), /healthz answers 503 for the broker,
runs created meanwhile are queued (no 500) and finish once Redis is back
(beat re-sends them: the outbox)."""

import time

import pytest

from tests.estimation.conftest import write_landcover
from tests.faults.stack import wait_until

pytestmark = pytest.mark.production_stack

RECOVERY_BOUND_SECONDS = 60.0
CREATE_BOUND_SECONDS = 5.0
PAGES = ["/", "/projects/", "/public/", "/estimation/methodologies/"]


def test_redis_down_while_users_browse_and_create_runs(stack, tmp_path):
    seeded = stack.django(
        "seed_estimation",
        raster=str(write_landcover(tmp_path / "lc.tif")),
        boundary_side_m=500,
        corner=[105.6, 27.125],  # inside the map (105.59-105.63 E, 27.12-27.16 N)
    )
    stack.extra_env.update(
        {"ESTIMATION_RUN_SWEEP_INTERVAL": "1", "ESTIMATION_RUN_DISPATCH_GRACE": "0"}
    )
    stack.worker()
    stack.beat()
    web = stack.web(workers=2, threads=2)
    staff = web.session(seeded["token"])
    anonymous = web.session()
    run = {
        "project": seeded["project_code"],
        "dataset": seeded["dataset"],
        "methodology": seeded["methodology"],
        "period_start": "2021-01-01",
        "period_end": "2021-12-31",
    }

    stack.redis.stop()
    health = anonymous.get(f"{web.base}/healthz", timeout=30)
    assert health.status_code == 503
    assert health.json()["broker"]["ok"] is False
    assert health.json()["database"]["ok"] is True
    for page in PAGES:
        response = anonymous.get(f"{web.base}{page}", timeout=30)
        assert response.status_code == 200, (page, response.status_code)
    # Anonymous API reads go through the throttle, which counts in the cache.
    response = anonymous.get(f"{web.base}/api/v1/methodologies/", timeout=30)
    assert response.status_code == 200, response.text[:300]
    queued, waited = [], 0.0
    for n in range(3):
        started = time.monotonic()
        response = staff.post(
            f"{web.base}/api/v1/estimation-runs/",
            json=run,
            headers={"Idempotency-Key": f"outage-run-{n}"},
            timeout=60,
        )
        assert response.status_code == 201, response.text[:500]
        assert response.json()["status"] == "queued"
        # Bounded by CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS' retry policy.
        waited = max(waited, time.monotonic() - started)
        assert waited < CREATE_BOUND_SECONDS, waited
        queued.append(response.json()["id"])
    for page in PAGES:
        assert anonymous.get(f"{web.base}{page}", timeout=30).status_code == 200
    assert (
        staff.get(f"{web.base}/api/v1/estimation-runs/", timeout=30).status_code == 200
    )

    stack.redis.start()
    back = time.monotonic()

    def finished():
        states = stack.django("runs", ids=queued)
        return (
            all(state["status"] == "succeeded" for state in states.values()) and states
        )

    try:
        states = wait_until(
            finished,
            timeout=RECOVERY_BOUND_SECONDS,
            what="the queued runs",
            interval=0.5,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}: {stack.django('runs', ids=queued)}") from None
    took = time.monotonic() - back
    assert all(state["results"] >= 1 for state in states.values()), states
    health = anonymous.get(f"{web.base}/healthz", timeout=30)
    assert health.status_code == 200, health.text
    stack.verify_ledger()
    print(
        f"redis down: {len(queued)} runs queued (slowest answer {waited:.1f}s), "
        f"all done {took:.1f}s after Redis returned"
    )
