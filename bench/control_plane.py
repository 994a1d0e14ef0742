"""Control-plane throughput: authenticated reads of a `chowder serve --no-engine` with many instances registered,
measured with wrk (Debian's `wrk`), beside `/healthz` (no auth, no database) in the same run.

The instances are inserted as the create use case stores them, running, for one organization (so its list and
every read scan a realistic table). Rate limits are off (they would be the bottleneck by design). Each route is
loaded by 2 threads and `--connections` connections for `--seconds`; then the load run: `--load-clients` clients
on status, get and a page of the list in turn for `--load-seconds`. Prints requests/s, p50, p99 and errors, for
each count of `--workers` in turn (`serve --workers N`), each count on a database of its own (a SQLite file, or
with `--database-url` a PostgreSQL one, e.g. under scripts/with-postgres). `--pin` puts the server on one core
and wrk (one thread) on the other, as a load generator on another machine would leave the server its core;
unpinned, wrk's two threads and the server share both cores, and the scheduler's preemptions set the p99. Not a
test; needs wrk.

    .venv/bin/python bench/control_plane.py                       # 10,000 instances, 32 connections, 10 s
    .venv/bin/python bench/control_plane.py --instances 1000 --seconds 5 --load-seconds 10
    .venv/bin/python bench/control_plane.py --pin                 # server on CPU 1, wrk on CPU 0
    .venv/bin/python bench/control_plane.py --workers 1,2         # one API process, then two
    scripts/with-postgres sh -c '.venv/bin/python bench/control_plane.py --workers 1,2 \
        --database-url "$CHOWDER_TEST_DATABASE_URL"'
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this checkout's code, not an installed one

from chowder.core.crypto import SecretBox
from chowder.core.settings import Settings
from chowder.domain.instance_views import CreateRequest, new_instance_record
from chowder.domain.models import Status
from chowder.domain.ports.storage import UnitOfWork
from chowder.persistence.db import Database
from chowder.persistence.store import SqlTransactions
from chowder.runtime.openclaw.versions import DEFAULT_RELEASE
from tests.e2e.harness import Server
from tests.factories import auth, signup

# Cycles a connection through the routes of the load run.
LOAD_SCRIPT = """
paths = {%s}
n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
"""


def register(data_dir: Path, database_url: str, org_id: str, count: int) -> list[str]:
    """`count` running instances of the org, inserted in one transaction; their ids."""
    box = SecretBox.from_settings(Settings(data_dir=data_dir))
    request = CreateRequest("agent", "anthropic", "process", "v1", None, None)
    records = []
    for n in range(count):
        record = new_instance_record(org_id, request, "process", DEFAULT_RELEASE, None, box, None)
        records.append(replace(record, name=f"agent {n}", status=Status.RUNNING, gateway_url="http://127.0.0.1:9"))

    def insert(uow: UnitOfWork) -> None:
        for record in records:
            uow.instances.add(record)

    db = Database(database_url)
    try:
        SqlTransactions(db).run_sync(insert)
        if db.engine.dialect.name == "postgresql":
            # The statistics autovacuum would gather within a minute; without them, the planner expects a dozen
            # rows of the org and sorts all 10,000 for a page (18 ms instead of 0.1 ms).
            with db.engine.connect() as connection:
                connection.execute(text("ANALYZE instances"))
                connection.commit()
    finally:
        db.dispose()
    return [record.id for record in records]


# The cores of `--pin`: the server's, and wrk's.
SERVER_CPU, WRK_CPU = "1", "0"


def wrk(
    url: str, key: str | None, connections: int, seconds: int, script: Path | None = None, pin: bool = False
) -> dict[str, str]:
    argv = ["taskset", "-c", WRK_CPU, "wrk", "-t1"] if pin else ["wrk", "-t2"]
    argv += [f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-H", f"Authorization: Bearer {key}"] if key and script is None else []
    argv += ["-s", str(script)] if script else []
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    found = {
        "req/s": re.search(r"Requests/sec:\s+([\d.]+)", out),
        "p50": re.search(r"\s50%\s+(\S+)", out),
        "p99": re.search(r"\s99%\s+(\S+)", out),
        "non-2xx": re.search(r"Non-2xx or 3xx responses: (\d+)", out),
        "socket errors": re.search(r"Socket errors: (.+)", out),
    }
    return {name: match.group(1) if match else "0" for name, match in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--load-clients", type=int, default=200)
    parser.add_argument("--load-seconds", type=int, default=60)
    parser.add_argument("--workers", default="1", help="worker counts to measure in turn, e.g. 1,2")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in each run's data dir)")
    parser.add_argument("--pin", action="store_true", help=f"server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    for workers in [int(count) for count in args.workers.split(",")]:
        measure(args, workers)


def measure(args: argparse.Namespace, workers: int) -> None:
    """One server with `workers` workers, on a database of its own, through every route and the load run."""
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-bench-cp-", dir="/tmp"))
    url = f"sqlite:///{data_dir / 'chowder.db'}"
    if args.database_url:
        url = fresh_database(args.database_url, f"bench_cp_{data_dir.name.rsplit('-', 1)[-1].lower()}")
    limits_off = {"CHOWDER_RATE_LIMIT_KEY_PER_MIN": "0", "CHOWDER_RATE_LIMIT_ORG_PER_MIN": "0"}
    command = ("serve", "--no-engine", "--workers", str(workers))
    server = Server(data_dir, url, command=command, **limits_off)
    if args.pin:
        server.wrapper = ["taskset", "-c", SERVER_CPU]
    try:
        server.start()
        key = signup(server.client, "Bench", model_keys={})
        org_id = server.client.get("/v1/organization", headers=auth(key)).json()["id"]
        ids = register(data_dir, url, org_id, args.instances)
        target = ids[len(ids) // 2]
        routes = {
            "GET /healthz (no auth)": ("/healthz", None),
            "GET /v1/instances/{id}/status": (f"/v1/instances/{target}/status", key),
            "GET /v1/instances/{id}": (f"/v1/instances/{target}", key),
            "GET /v1/instances?limit=50": ("/v1/instances?limit=50", key),
        }
        database = url.split("://")[0]
        print(
            f"{workers} worker(s), {database}: {args.instances} instances registered; "
            f"{args.connections} connections, {args.seconds} s per route"
            + (f"; server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}" if args.pin else "")
        )
        print(f"  {'route':<34}{'req/s':>9}{'p50':>10}{'p99':>10}{'non-2xx':>9}")
        for label, (path, route_key) in routes.items():
            figures = wrk(server.url + path, route_key, args.connections, args.seconds, pin=args.pin)
            print(f"  {label:<34}{figures['req/s']:>9}{figures['p50']:>10}{figures['p99']:>10}{figures['non-2xx']:>9}")
        script = data_dir / "load.lua"
        paths = ", ".join(f'"{path}"' for path, route_key in routes.values() if route_key)
        script.write_text(LOAD_SCRIPT % (paths, key))
        load = wrk(server.url, key, args.load_clients, args.load_seconds, script, args.pin)
        print(
            f"load: {args.load_clients} clients on status, get and a list page for {args.load_seconds} s: "
            f"{load['req/s']} req/s, p50 {load['p50']}, p99 {load['p99']}, non-2xx {load['non-2xx']}, "
            f"socket errors {load['socket errors']}"
        )
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """A new, empty database `name` on the PostgreSQL server of `server_url`; its URL."""
    engine = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    main()
