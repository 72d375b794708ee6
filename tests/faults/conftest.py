"""The fault suite's own services: one PostgreSQL cluster for the session (a
migrated template database, copied for each test), and per test a Redis,
media folder and whatever processes the test starts; every one stopped and
the cluster dropped by finalizers, even when a test fails."""

import os
import sys
import time

import pytest

from tests.faults.stack import PostgresCluster, Stack, require_stack, run

TEMPLATE = "faults_template"


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory):
    require_stack()
    cluster = PostgresCluster(f"faults{os.getpid()}")
    try:
        cluster.create()
        cluster.create_database(TEMPLATE)
        template_dir = tmp_path_factory.mktemp("template")
        stack = Stack(cluster, TEMPLATE, template_dir)
        stack.manage(
            "migrate",
            "--no-input",
            "-v0",
            DATABASE_APP_ROLE="faults_app",
        )
        # Production settings serve hashed static files: collected once.
        cluster.static_root = template_dir / "static"
        run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            env=stack.env(
                STATIC_ROOT=cluster.static_root, REDIS_URL="redis://127.0.0.1:1/0"
            ),
            timeout=300,
        )
        yield cluster
    finally:
        cluster.drop()


@pytest.fixture
def stack(fault_cluster, tmp_path, request):
    """A fresh migrated database (a copy of the template) and this test's
    Redis; the test starts the processes it needs."""
    name = f"faults_{time.monotonic_ns()}"
    fault_cluster.create_database(name, template=TEMPLATE)
    fault_stack = Stack(fault_cluster, name, tmp_path)
    fault_stack.extra_env["STATIC_ROOT"] = str(fault_cluster.static_root)
    fault_stack.start_redis()
    yield fault_stack
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(fault_stack.logs())  # shown with the failure
    fault_stack.stop()
    fault_cluster.drop_database(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
