"""The runtime's own reads of tenant-controlled state files, on the real process provider: whatever the tenant
planted as openclaw.json or as the gateway log (a FIFO, a 20 GiB sparse file), the control plane neither blocks
nor loads it whole; it fails at once with an error naming the file, or quotes only the log's tail."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chowder.core.errors import ProviderError
from chowder.runtime.openclaw.runtime import OpenClawRuntime
from chowder.runtime.openclaw.state_files import CONFIG_FILE, GATEWAY_LOG, LAST_GOOD_FILE, read_config
from chowder.sandbox.process import ProcessProvider
from tests.providers.harness import own_settings, run, spec_for

pytestmark = pytest.mark.timeout(60)
SANDBOX = "state"
HUGE = 20 * 1024**3


@contextlib.asynccontextmanager
async def state_dir(data_dir: Path) -> AsyncIterator[tuple[ProcessProvider, OpenClawRuntime, Path]]:
    """A created (never started) sandbox, the runtime, and the root the tenant writes to."""
    settings = own_settings(data_dir)
    provider = ProcessProvider(settings)
    root = Path((await provider.create(spec_for(SANDBOX))).root)
    try:
        async with httpx.AsyncClient() as http:
            yield provider, OpenClawRuntime(settings, http), root
    finally:
        await provider.destroy(SANDBOX)


def test_a_fifo_or_a_huge_openclaw_json_fails_at_once_naming_the_file(data_dir: Path) -> None:
    async def scenario() -> None:
        async with state_dir(data_dir) as (provider, runtime, root):
            (root / LAST_GOOD_FILE).write_text("{}")
            os.mkfifo(root / CONFIG_FILE)
            reads = (
                read_config(provider, SANDBOX),
                runtime.remember_good_config(provider, SANDBOX),
                runtime.restore_last_good_config(provider, SANDBOX),
            )
            async with asyncio.timeout(5):
                for attempt in reads:
                    with pytest.raises(ProviderError, match="Cannot read openclaw.json: Not a regular file."):
                        await attempt
            os.unlink(root / CONFIG_FILE)
            with open(root / CONFIG_FILE, "wb") as sparse:
                sparse.truncate(HUGE)
            async with asyncio.timeout(5):
                with pytest.raises(ProviderError, match="Cannot read openclaw.json: The file is larger than 4 MiB."):
                    await read_config(provider, SANDBOX)

    run(scenario())


def test_a_failed_start_quotes_the_tail_of_the_gateway_log_and_a_fifo_log_not_at_all(data_dir: Path) -> None:
    async def scenario() -> None:
        async with state_dir(data_dir) as (provider, runtime, root):
            log = root / GATEWAY_LOG
            log.parent.mkdir(exist_ok=True)
            os.mkfifo(log)
            async with asyncio.timeout(5):
                with pytest.raises(ProviderError) as fifo:
                    await runtime.wait_ready(provider, SANDBOX, 5)
            assert fifo.value.detail == "The gateway exited during start-up."
            os.unlink(log)
            with open(log, "wb") as sparse:
                sparse.truncate(HUGE)
                sparse.seek(HUGE)
                sparse.write(b"".join(b"\nline %d" % i for i in range(1, 11)) + b"\n")
            async with asyncio.timeout(5):
                with pytest.raises(ProviderError) as huge:
                    await runtime.wait_ready(provider, SANDBOX, 5)
            quoted = "\n".join(f"line {i}" for i in range(3, 11))
            assert huge.value.detail == f"The gateway exited during start-up.\nLast gateway output:\n{quoted}"

    run(scenario())
