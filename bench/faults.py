"""The long fault run: the control plane SIGKILLed during 200 operations (create, start, stop, delete, config
apply) on real gateways, restarted each time and checked as `tests/e2e/faults.py` says; prints what it did and how
long each restart took to settle. CI runs 30 (`tests/e2e/test_faults.py`). Needs root; about an hour here.

    .venv/bin/python bench/faults.py --operations 200 --seed 7
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # this checkout's code, not an installed one

from tests.e2e.faults import FaultCampaign
from tests.e2e.harness import Server, destroy_sandboxes, free_port, require_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=200, help="operations to kill into")
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 32), help="repeats a run")
    args = parser.parse_args()
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-bench-", dir="/tmp"))
    env = {"CHOWDER_DEV_MODEL": "1", "CHOWDER_MODEL_PORT": str(free_port())}
    servers: list[Server] = []

    def restart() -> Server:
        servers.append(Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", **env))
        servers[-1].start()
        return servers[-1]

    print(f"seed {args.seed}", flush=True)
    try:
        campaign = FaultCampaign(restart, data_dir, random.Random(args.seed))
        result = campaign.run(args.operations, say=lambda line: print(line, flush=True))
        print(result.summary())
    finally:
        for server in servers:
            server.stop()
        destroy_sandboxes(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
