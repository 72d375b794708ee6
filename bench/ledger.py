"""The ledger under load on PostgreSQL: settled transfers per second with 8
concurrent clients (each a process with its own connection), spread over many
accounts and all from one hot account; then issuing 10,000,000 t against 10 t.
Every run ends with ``verify_ledger``: 0 violations is part of the result.

Run: ``DATABASE_URL=postgis://... .venv/bin/python -m bench.ledger`` (``make
bench`` starts the production stack). Uses a throw-away test database.
"""

import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from bench.report import write_section  # noqa: E402

CLIENTS = 8
TRANSFERS_PER_CLIENT = 150
HOLDINGS = 1_000_000


def _setup():
    from django.contrib.gis.geos import MultiPolygon, Polygon

    from registry import services as registry_services
    from registry.boundaries import normalize_geometry
    from registry.models import AdministrativeDivision, Organization, User
    from registry.roles import Role
    from registry.services import ProjectDetails, add_member, create_project, grant_role
    from trading import services

    def user(name, role, organization):
        person = User.objects.create(username=name)
        grant_role(user=person, role=role)
        add_member(user=person, organization=organization)
        return person

    from registry import uscc

    def code(n):
        body = f"91520500MA{n:07d}"
        return body + uscc.check_character(body)

    operator = registry_services.create_organization(
        name_zh="中心",
        name_en="Operator",
        kind=Organization.Kind.REGISTRY_OPERATOR,
        uscc=code(1),
    )
    admin = user("admin", Role.REGISTRY_ADMIN, operator)
    holders = []
    for n in range(2 * CLIENTS):
        org = registry_services.create_organization(
            name_zh=f"持有人{n}",
            name_en=f"Holder {n}",
            kind="project_owner",
            uscc=code(10 + n),
        )
        holders.append(
            (
                org.accounts.get(kind="holding").pk,
                user(f"staff{n}", Role.BUREAU_STAFF, org).pk,
            )
        )
    first_staff = User.objects.get(pk=holders[0][1])
    ring = (
        (105.6, 27.14),
        (105.61, 27.14),
        (105.61, 27.15),
        (105.6, 27.15),
        (105.6, 27.14),
    )
    project = create_project(
        actor=first_staff,
        details=ProjectDetails(
            name_zh="基准",
            name_en="Bench",
            owner=Organization.objects.get(name_en="Holder 0"),
            county=AdministrativeDivision.objects.get(adcode="520521"),
            crediting_start=date(2021, 1, 1),
            crediting_end=date(2050, 12, 31),
            ecosystem_focus="forest",
        ),
        boundary=normalize_geometry(MultiPolygon(Polygon(ring), srid=4326)),
    )
    from registry.models import Account

    # One batch per holder; a monitoring period is issued once, so each holder's
    # batch covers a day of its own.
    for day, (account_pk, _) in enumerate(holders):
        services.issue_batch(
            actor=admin,
            project=project,
            vintage=2025,
            monitoring_start=date(2025, 1, 1) + timedelta(days=day),
            monitoring_end=date(2025, 1, 1) + timedelta(days=day),
            quantity=HOLDINGS,
            buffer_quantity=0,
            holder_account=Account.objects.get(pk=account_pk),
        )
    return admin.pk, project.pk, holders


def _trader(admin_pk, seller_holder, buyer_holder, prefix):
    """A function settling the n-th transfer (1-7 t at 90 CNY) from the seller's
    account to the buyer's: a request, then a registry admin's approval."""
    from registry.models import Account, User
    from trading import services

    admin = User.objects.get(pk=admin_pk)
    seller = User.objects.get(pk=seller_holder[1])
    seller_account = Account.objects.get(pk=seller_holder[0])
    buyer_account = Account.objects.get(pk=buyer_holder[0])

    def settle(n):
        request = services.request_transfer(
            actor=seller,
            from_account=seller_account,
            to_account=buyer_account,
            quantity=1 + n % 7,
            price_per_tonne="90.00",
            idempotency_key=f"{prefix}-{n}",
        )
        services.approve_request(actor=admin, request=request)

    return settle


def _client(args):
    """One client: settle transfers (request + an admin's approval) in a loop."""
    index, admin_pk, holders, hot = args
    connections.close_all()
    settle = _trader(
        admin_pk,
        holders[0] if hot else holders[index],
        holders[CLIENTS + index],
        f"{'hot' if hot else 'spread'}-{index}",
    )
    for n in range(TRANSFERS_PER_CLIENT):
        settle(n)
    connections.close_all()
    return TRANSFERS_PER_CLIENT


def _cost_per_transfer(admin_pk, holders) -> dict:
    """One client alone: statements, and CPU in this process (Django) and in its
    PostgreSQL backend (read from /proc: the server is local), per settled
    transfer. N cores can settle at most N / (their sum) per second."""
    settle = _trader(admin_pk, holders[1], holders[CLIENTS + 1], "cost")

    def backend_cpu_seconds(pid):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    settle(0)
    with CaptureQueriesContext(connection) as queries:
        settle(1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    rounds = 300
    server, client = backend_cpu_seconds(backend), time.process_time()
    for n in range(2, 2 + rounds):
        settle(n)
    server = (backend_cpu_seconds(backend) - server) / rounds
    client = (time.process_time() - client) / rounds
    return {
        "statements": len(queries.captured_queries),
        "client_ms": client * 1000,
        "server_ms": server * 1000,
        "ceiling": (os.cpu_count() or 1) / (client + server),
    }


def _load(admin_pk, holders, *, hot: bool) -> float:
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    with context.Pool(CLIENTS) as pool:
        settled = sum(
            pool.map(_client, [(i, admin_pk, holders, hot) for i in range(CLIENTS)])
        )
    return settled / (time.perf_counter() - start)


def _issuance_cost(admin_pk, project_pk, holders):
    from registry.models import Account, Project, User
    from trading import services

    admin, project = User.objects.get(pk=admin_pk), Project.objects.get(pk=project_pk)
    holder = Account.objects.get(pk=holders[0][0])

    days = iter(range(366))

    def issue(quantity):
        day = date(2026, 1, 1) + timedelta(days=next(days))
        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            services.issue_batch(
                actor=admin,
                project=project,
                vintage=2026,
                monitoring_start=day,
                monitoring_end=day,
                quantity=quantity,
                buffer_quantity=quantity // 10,
                holder_account=holder,
            )
        return time.perf_counter() - start, len(queries.captured_queries)

    issue(10)
    small = [issue(10) for _ in range(30)]
    large = [issue(10_000_000) for _ in range(30)]
    return (
        statistics.median(t for t, _ in small),
        statistics.median(t for t, _ in large),
        {q for _, q in small},
        {q for _, q in large},
    )


def _pgbench_tps() -> float | None:
    """The machine's ceiling as a peer: pgbench's TPC-B-like transactions per
    second with the same number of clients, on the same server, in this run."""
    pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not os.path.exists(pgbench):
        return None
    settings = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": settings["PASSWORD"] or ""}
    target = [
        "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
        "-U", settings["USER"], settings["NAME"],
    ]  # fmt: skip
    subprocess.run(
        [pgbench, "-i", "-q", "-s", "8", *target],
        env=env,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [
            pgbench,
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-T",
            "15",
            "-b",
            "tpcb-like",
            *target,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([0-9.]+)", result.stdout)
    return float(match.group(1)) if match else None


def main() -> None:
    from trading.verification import verify_ledger

    if connection.vendor != "postgresql":
        raise SystemExit(
            "bench.ledger measures PostgreSQL: set DATABASE_URL (make bench does)."
        )
    setup_test_environment()
    # Its own throw-away database, never the test suite's.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_registry"
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=False
    )
    try:
        admin_pk, project_pk, holders = _setup()
        cost = _cost_per_transfer(admin_pk, holders)
        spread = _load(admin_pk, holders, hot=False)
        hot = _load(admin_pk, holders, hot=True)
        small, large, small_queries, large_queries = _issuance_cost(
            admin_pk, project_pk, holders
        )
        report = verify_ledger(record=False)
        pgbench = _pgbench_tps()
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)

    violations = len(report.violations)
    text = "\n".join(
        [
            f"PostgreSQL 15, {CLIENTS} concurrent clients (processes, one connection "
            "each), "
            f"{TRANSFERS_PER_CLIENT} transfers each; a settled transfer is a request "
            "(reserve serials, journal entries) plus a registry admin's approval (move "
            "blocks, journal entries): two transactions through the same services the "
            "pages use. Target: 300+ settled transfers/s with 0 violations.",
            "",
            "| workload | settled transfers/s | target "
            "| ledger violations after the run |",
            "|---|---|---|---|",
            f"| {CLIENTS} sellers to {CLIENTS} buyers | {spread:,.0f} | "
            f"{'met' if spread >= 300 else 'MISSED'} (300+) | {violations} |",
            f"| every transfer from one hot account | {hot:,.0f} | "
            f"(hot / spread = {hot / spread:.2f}) | {violations} |",
            "",
            (
                f"Peer in the same run: pgbench TPC-B-like, {CLIENTS} clients, same "
                f"server: {pgbench:,.0f} transactions/s. A settled transfer is two "
                f"ledger transactions, so this machine's ceiling for the ledger's "
                f"design is about {pgbench / 2:,.0f} settled transfers/s; ours reach "
                f"{spread / (pgbench / 2):.0%} of it."
                if pgbench
                else "pgbench is not installed: no peer for the machine's ceiling."
            ),
            "",
            f"Where the time goes (one client alone, same run): a settled transfer "
            f"is {cost['statements']} SQL statements, {cost['client_ms']:.1f} ms of "
            f"CPU in Django's Python and {cost['server_ms']:.1f} ms in PostgreSQL; "
            f"with both on {os.cpu_count()} cores, at most "
            f"{cost['ceiling']:,.0f} settled transfers/s. On PostgreSQL the "
            "reservation and the settlement are one database function each, and the "
            "journal is hashed and linked by its insert trigger inside each "
            "transaction's last statement, so the chain's head is held only until "
            "the commit.",
            "",
            "| issuance | median time | queries | ratio |",
            "|---|---|---|---|",
            f"| 10 t | {small * 1000:.1f} ms | {sorted(small_queries)} | 1 |",
            f"| 10,000,000 t | {large * 1000:.1f} ms | {sorted(large_queries)} | "
            f"{large / small:.2f} |",
            "",
            f"After the run: {report.entries:,} journal entries, "
            f"{report.blocks:,} blocks; "
            f"verify_ledger found {violations} violations.",
        ]
    )
    print(text)
    write_section("ledger", "Ledger on PostgreSQL", text)


if __name__ == "__main__":
    main()
