"""PostgreSQL restarted while 8 clients request and approve transfers through
the HTTP API: every answer is a success or a clean JSON error (a 503 with
Retry-After while the database is away, never Django's HTML 500); retrying
the same Idempotency-Key afterwards acts exactly once; no half-done transfer;
the ledger verifies."""

import threading
import time

import pytest

from tests.faults.stack import PG_VERSION, run

pytestmark = pytest.mark.production_stack

CLIENTS = 8
HOLDINGS = 10_000
RESTART_AFTER_SECONDS = 2.0
TRAFFIC_AFTER_RESTART_SECONDS = 3.0
# From the restart's start to every client's first success after it.
RECOVERY_BOUND_SECONDS = 20.0
GIVE_UP_AFTER_SECONDS = 60.0


class Client(threading.Thread):
    """One holder requesting transfers to its buyer and the admin approving
    each, every mutation with an Idempotency-Key, repeated until it succeeds."""

    def __init__(self, index, web, pair, admin_token, stop):
        super().__init__(daemon=True)
        self.index, self.web, self.pair, self.stop = index, web, pair, stop
        self.seller = web.session(pair["token"])
        self.admin = web.session(admin_token)
        self.answers: list[tuple[int, str, dict | str, str]] = []
        self.settled: dict[str, int] = {}  # key -> quantity
        self.successes: list[float] = []
        self.failure: str | None = None

    def post(self, session, path, key, data):
        deadline = time.monotonic() + GIVE_UP_AFTER_SECONDS
        while True:
            response = session.post(
                f"{self.web.base}/api/v1/{path}",
                json=data,
                headers={"Idempotency-Key": key, "Accept-Language": "en"},
                timeout=30,
            )
            kind = response.headers.get("Content-Type", "")
            try:
                body = response.json()
            except ValueError:
                body = response.text[:300]
            self.answers.append(
                (response.status_code, kind, body, response.headers.get("Retry-After"))
            )
            if response.status_code < 300:
                self.successes.append(time.monotonic())
                return body
            if response.status_code != 503 or time.monotonic() > deadline:
                raise AssertionError(f"{path} {key}: {response.status_code} {body}")
            time.sleep(0.2)  # shorter than Retry-After: the restart is quick

    def run(self):
        try:
            n = 0
            while not self.stop.is_set():
                key = f"client{self.index}-transfer{n}"
                quantity = 1 + n % 5
                request = self.post(
                    self.seller,
                    "trade-requests/",
                    key,
                    {
                        "kind": "transfer",
                        "from_account": self.pair["from_account"],
                        "to_account": self.pair["to_account"],
                        "quantity": quantity,
                        "price_per_tonne": "90.00",
                    },
                )
                approved = self.post(
                    self.admin,
                    f"trade-requests/{request['id']}/approve/",
                    f"approve-{key}",
                    {},
                )
                assert approved["status"] == "settled", approved
                # The same key again, once it all went through: the stored
                # answer, not a second transfer.
                again = self.post(
                    self.seller,
                    "trade-requests/",
                    key,
                    {
                        "kind": "transfer",
                        "from_account": self.pair["from_account"],
                        "to_account": self.pair["to_account"],
                        "quantity": quantity,
                        "price_per_tonne": "90.00",
                    },
                )
                assert again["id"] == request["id"], (again, request)
                self.settled[key] = quantity
                n += 1
        except Exception as error:  # reported by the test
            self.failure = repr(error)


def test_postgres_restart_under_transfer_load(stack):
    seeded = stack.django("seed_ledger", clients=CLIENTS, holdings=HOLDINGS)
    web = stack.web(workers=2, threads=4, CONN_MAX_AGE=60)
    stop = threading.Event()
    clients = [
        Client(i, web, pair, seeded["admin_token"], stop)
        for i, pair in enumerate(seeded["pairs"])
    ]
    for client in clients:
        client.start()
    time.sleep(RESTART_AFTER_SECONDS)
    restart_began = time.monotonic()
    stack.cluster.restart()
    restarted = time.monotonic()
    time.sleep(TRAFFIC_AFTER_RESTART_SECONDS)
    stop.set()
    for client in clients:
        client.join(timeout=GIVE_UP_AFTER_SECONDS + 30)
        assert not client.is_alive(), f"client {client.index} hung"

    failures = [c.failure for c in clients if c.failure]
    assert not failures, failures
    answers = [answer for client in clients for answer in client.answers]
    unavailable = [answer for answer in answers if answer[0] == 503]
    for status, content_type, body, retry_after in answers:
        # Every answer is JSON: a success, or an error with a stable code.
        assert content_type.startswith("application/json"), (status, body)
        if status >= 300:
            assert status == 503, (status, body)
            assert body["code"] == "database_unavailable", body
            assert "Idempotency-Key" in body["message"], body
            assert int(retry_after) > 0
    # The restart was felt (else this test proved nothing) ...
    assert unavailable, "no request met the restart"
    # ... and every client got through again within the bound.
    recovery = max(
        min(t for t in client.successes if t > restarted) - restart_began
        for client in clients
    )
    assert recovery < RECOVERY_BOUND_SECONDS, recovery

    # Exactly once: one request per key, each settled, the quantities the
    # clients asked for; none pending (no half-done transfer).
    stored = stack.django(
        "trade_requests", sellers=[p["seller"] for p in seeded["pairs"]]
    )
    expected = {key: q for client in clients for key, q in client.settled.items()}
    in_flight = {key for key in stored if key not in expected}
    # A client stopped between its request and its approval leaves one
    # pending request of its own at most; everything else is settled.
    assert len(in_flight) <= CLIENTS
    for key, quantity in expected.items():
        assert stored[key] == ["settled", quantity], (key, stored[key])
    stack.verify_ledger()
    print(
        f"postgres restart: {len(expected)} transfers settled, "
        f"{len(unavailable)} answers 503, recovery {recovery:.1f}s "
        f"(restart itself {restarted - restart_began:.1f}s)"
    )


def test_every_error_of_the_api_is_json_when_the_database_is_gone(stack):
    """With the database stopped outright, a read and a write both answer 503
    JSON with Retry-After, in the client's language."""
    seeded = stack.django("seed_ledger", clients=1, holdings=10)
    web = stack.web(workers=1, threads=2)
    pair = seeded["pairs"][0]
    session = web.session(pair["token"])
    assert session.get(f"{web.base}/api/v1/accounts/", timeout=10).status_code == 200
    run(["pg_ctlcluster", PG_VERSION, stack.cluster.name, "stop", "-m", "fast"])
    try:
        for method, path, data in [
            ("get", "accounts/", None),
            ("post", "trade-requests/", {"kind": "transfer", "quantity": 1}),
        ]:
            response = getattr(session, method)(
                f"{web.base}/api/v1/{path}",
                json=data,
                headers={"Accept-Language": "zh-CN", "Idempotency-Key": "k1"},
                timeout=30,
            )
            assert response.status_code == 503, response.text[:300]
            assert response.headers["Retry-After"] == "5"
            body = response.json()
            assert body["code"] == "database_unavailable"
            assert "Idempotency-Key" in body["message"]
            assert body["message"] != (
                "The registry's database is not answering for a moment. Try again "
                "in a few seconds; repeat a change with the same Idempotency-Key so "
                "that it is made only once."
            ), "not translated"
    finally:
        stack.cluster.start()
    assert session.get(f"{web.base}/api/v1/accounts/", timeout=10).status_code == 200
