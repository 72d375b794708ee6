"""Public certificate verification under gunicorn, with 100,000 certificates in
PostgreSQL: requests per second and latency percentiles measured by ``wrk`` (a
separate process) over random certificates, side by side with two peers under
the same gunicorn: a static file (whitenoise, no database) and ``/healthz``
(one database round trip and a Redis ping).

The first certificates are made through the services (request, approval,
certificate in the settling transaction); the rest are written in bulk as the
same rows (settled requests, retired one-tonne blocks, retire entries chained
by the database's trigger, certificates), then ``verify_ledger`` checks the
whole journal: 0 violations is part of the result.

Run: ``DATABASE_URL=postgis://... REDIS_URL=redis://... .venv/bin/python -m
bench.certificates`` (``make bench`` starts the production stack and installs
wrk). Uses a throw-away database.
"""

import base64
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from bench.report import write_section  # noqa: E402

CERTIFICATES = 100_000
THROUGH_SERVICES = 200
CHUNK = 5_000
WORKERS = 4
CONNECTIONS = 16
SECONDS = 15
SAMPLE_PATHS = 5_000
DATABASE = "bench_certificates"


def _populate() -> tuple[int, int]:
    """Certificates for CERTIFICATES one-tonne retirements; returns (made
    through the services, made in bulk)."""
    from django.utils import timezone

    from bench.ledger import _setup
    from registry.models import Account, User
    from trading import services
    from trading.models import (
        Certificate,
        CreditBatch,
        CreditBlock,
        LedgerEntry,
        TradeRequest,
    )

    admin_pk, _project_pk, holders = _setup()
    admin = User.objects.get(pk=admin_pk)
    account_pk, staff_pk = holders[0]
    account = Account.objects.get(pk=account_pk)
    staff = User.objects.get(pk=staff_pk)
    for n in range(THROUGH_SERVICES):
        request = services.request_retirement(
            actor=staff,
            from_account=account,
            quantity=1,
            beneficiary=f"受益单位 {n}",
            beneficiary_public=n % 5 != 0,
            purpose="voluntary",
            reporting_year=2025,
            idempotency_key=f"bench-service-{n}",
        )
        services.approve_request(actor=admin, request=request)

    retirement = Account.objects.get(kind=Account.Kind.RETIREMENT)
    batch = CreditBatch.objects.get(blocks__account=account)
    now = timezone.now()
    remaining = CERTIFICATES - THROUGH_SERVICES
    made = 0
    while made < remaining:
        size = min(CHUNK, remaining - made)
        with transaction.atomic():
            holding = CreditBlock.objects.select_for_update().get(
                account=account, batch=batch, state=CreditBlock.State.ACTIVE
            )
            first = holding.first_serial
            holding.first_serial += size
            holding.quantity -= size
            holding.save(update_fields=["first_serial", "quantity"])
            requests = TradeRequest.objects.bulk_create(
                TradeRequest(
                    kind=TradeRequest.Kind.RETIREMENT,
                    status=TradeRequest.Status.SETTLED,
                    from_account=account,
                    to_account=retirement,
                    quantity=1,
                    beneficiary=f"Beneficiary {made + i}",
                    beneficiary_public=(made + i) % 5 != 0,
                    purpose="voluntary",
                    reporting_year=2025,
                    initiator=staff,
                    idempotency_key=f"bench-bulk-{made + i}",
                    request_hash="0" * 64,
                    expires_at=now,
                    reviewed_by=admin,
                    reviewed_at=now,
                )
                for i in range(size)
            )
            CreditBlock.objects.bulk_create(
                CreditBlock(
                    batch=batch,
                    account=retirement,
                    first_serial=first + i,
                    last_serial=first + i,
                    quantity=1,
                    state=CreditBlock.State.RETIRED,
                )
                for i in range(size)
            )
            # The insert trigger gives each its sequence and chained hashes.
            # Each retirement is reserved, then retired, as the services write
            # it (verify_ledger replays the journal against the blocks).
            LedgerEntry.objects.bulk_create(
                LedgerEntry(
                    kind=kind,
                    batch=batch,
                    first_serial=first + i,
                    last_serial=first + i,
                    quantity=1,
                    from_account=account,
                    to_account=to_account,
                    trade_request=request,
                    actor=admin,
                    created_at=now,
                )
                for i, request in enumerate(requests)
                for kind, to_account in (
                    (LedgerEntry.Kind.RESERVE, account),
                    (LedgerEntry.Kind.RETIRE, retirement),
                )
            )
            Certificate.objects.bulk_create(
                Certificate(
                    number=f"BJ-RC-{now.year}-{THROUGH_SERVICES + made + i + 1:06d}",
                    trade_request=request,
                    account=account,
                    beneficiary=request.beneficiary,
                    beneficiary_public=request.beneficiary_public,
                    purpose=request.purpose,
                    reporting_year=2025,
                    quantity=1,
                    retired_at=now,
                )
                for i, request in enumerate(requests)
            )
        made += size
    return THROUGH_SERVICES, made


def _queries_per_verification(token: str) -> int:
    client = Client()
    client.get(f"/verify/{token}/")  # warm
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/verify/{token}/")
    assert response.status_code == 200 and b'data-valid="true"' in response.content
    return len(queries)


def _server_env(static_root: str) -> dict:
    database = dict(connection.settings_dict)
    url = (
        f"postgis://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL or "redis://127.0.0.1:6390/0",
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        # Production settings refuse to start without the registry's own key;
        # a fresh one per run signs nothing that outlives the benchmark.
        "LEDGER_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "False",
        "STATIC_ROOT": static_root,
        "CONN_MAX_AGE": "600",
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, deadline: float) -> None:
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"bench.certificates: gunicorn did not answer {url}")


WRK_SCRIPT = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(7)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def _wrk(base: str, paths: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        script = Path(folder) / "paths.lua"
        script.write_text(WRK_SCRIPT % listing)
        output = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{SECONDS}s",
                "--latency",
                "-s",
                str(script),
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": millis("50"),
        "p99": millis("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
    }


def _measure(tokens: list[str]) -> dict[str, dict]:
    static_root = tempfile.mkdtemp(prefix="bench-static-")
    port = _free_port()
    env = _server_env(static_root)
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput", "-v0"], env=env, check=True
    )
    server = subprocess.Popen(
        [
            str(Path(python).with_name("gunicorn")),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/healthz", time.monotonic() + 60)
        sample = random.Random(7).sample(tokens, min(SAMPLE_PATHS, len(tokens)))
        verify = [f"/verify/{token}/" for token in sample]
        _wrk(base, verify[:200])  # warm every worker's connection and caches
        return {
            "verify": _wrk(base, verify),
            "static": _wrk(base, ["/static/css/site.css"]),
            "healthz": _wrk(base, ["/healthz"]),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(static_root, ignore_errors=True)


def main() -> None:
    from trading.models import Certificate
    from trading.verification import verify_ledger

    if connection.vendor != "postgresql":
        raise SystemExit(
            "bench.certificates measures PostgreSQL: set DATABASE_URL "
            "(make bench does)."
        )
    if shutil.which("wrk") is None:
        raise SystemExit("bench.certificates needs wrk (apt-get install wrk).")
    setup_test_environment()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = DATABASE
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=False
    )
    try:
        started = time.perf_counter()
        through_services, in_bulk = _populate()
        populate_s = time.perf_counter() - started
        report = verify_ledger(record=False)
        tokens = list(Certificate.objects.values_list("token", flat=True))
        queries = _queries_per_verification(tokens[0])
        connection.close()  # gunicorn's workers open their own
        results = _measure(tokens)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    verify = results["verify"]
    rows = [
        "| endpoint | requests/s | p50 | p99 | non-2xx |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "verify": "`/verify/<token>/` (random certificates)",
        "healthz": "`/healthz` (peer: one query + Redis ping)",
        "static": "`/static/css/site.css` (peer: whitenoise, no database)",
    }
    for key in ("verify", "healthz", "static"):
        result = results[key]
        rows.append(
            f"| {labels[key]} | {result['rps']:,.0f} | {result['p50']:.1f} ms | "
            f"{result['p99']:.1f} ms | {result['errors']} |"
        )
    text = "\n".join(
        [
            f"{len(tokens):,} certificates in PostgreSQL 15 ({through_services} made "
            f"through the services, {in_bulk:,} written in bulk as the same rows; "
            f"{populate_s:.0f} s); `verify_ledger` over {report.entries:,} journal "
            f"entries: {len(report.violations)} violations. gunicorn "
            f"{WORKERS} sync workers, production settings; `wrk -t2 -c{CONNECTIONS} "
            f"-d{SECONDS}s` from a separate process on the same 2-core machine, "
            f"over {min(SAMPLE_PATHS, len(tokens)):,} random certificates.",
            "",
            *rows,
            "",
            f"Verification recomputes the certificate's entry hashes and checks its "
            f"links on every request ({queries} queries, whatever the journal's "
            f"length). Verification runs at "
            f"{verify['rps'] / results['static']['rps']:.2f}x the static file's rate "
            f"and {verify['rps'] / results['healthz']['rps']:.2f}x `/healthz`'s. "
            f"Target: 300+ requests/s with p99 under 100 ms: "
            f"{'met' if verify['rps'] >= 300 and verify['p99'] < 100 else 'NOT met'}.",
        ]
    )
    print(text)
    write_section(
        "certificates", "Public certificate verification (PostgreSQL, gunicorn)", text
    )
    if report.violations or verify["errors"]:
        raise SystemExit("bench.certificates: violations or failed requests")


if __name__ == "__main__":
    main()
