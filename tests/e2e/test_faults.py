"""Proof under faults: the control plane SIGKILLed at 30 random points of create, start, stop, delete and config
apply (`tests/e2e/faults.py` says what is checked after each restart; `bench/faults.py` runs 200)."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import pytest

from tests.e2e.faults import FaultCampaign
from tests.e2e.harness import Server, free_port

pytestmark = pytest.mark.e2e

OPERATIONS = 30
log = logging.getLogger(__name__)


@pytest.mark.timeout(1800)  # ~12 kills with boots between them; ~6 min on a quiet machine
def test_random_kills_leave_every_instance_stable_nothing_orphaned_and_history_kept(
    server_factory: type[Server], data_dir: Path
) -> None:
    seed = int(os.environ.get("CHOWDER_FAULT_SEED", random.randrange(1 << 32)))

    model_port = str(free_port())  # a setting, as in production: the gateways that outlive a crash call it

    def restart() -> Server:
        server = server_factory(
            data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1", CHOWDER_MODEL_PORT=model_port
        )
        server.start()
        return server

    log.info("seed %d (CHOWDER_FAULT_SEED repeats this run)", seed)
    campaign = FaultCampaign(restart, data_dir, random.Random(seed))
    result = campaign.run(OPERATIONS, say=log.info)
    log.info("seed %d: %s", seed, result.summary())
    assert result.kills >= OPERATIONS // 3 and result.turns >= 1
