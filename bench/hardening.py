"""What the sandbox hardening costs: provider start-up, create (disk image), and a command's spawn with and
without the seccomp filter, alternating run by run so both see the same machine. Needs root. Prints medians;
not a pass/fail test.

    .venv/bin/python bench/hardening.py --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chowder.core.settings import Settings
from chowder.sandbox.process import ProcessProvider
from tests.conftest import unmount_below
from tests.providers.harness import spec_for


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


async def main(runs: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-bench-", dir="/tmp"))
    data_dir.chmod(0o711)
    settings = Settings(data_dir=data_dir, gateway_port_min=33000, gateway_port_max=33999, sandbox_uid_base=330000)
    try:
        started = time.perf_counter()
        provider = ProcessProvider(settings)
        print(f"provider start-up (all probes): {(time.perf_counter() - started) * 1000:.1f} ms")
        for mechanism, note in provider.isolation_report().items():
            print(f"  {mechanism}: {note}")
        creates, destroys = [], []
        for index in range(runs):
            started = time.perf_counter()
            await provider.create(spec_for(f"c{index}"))
            creates.append(time.perf_counter() - started)
            started = time.perf_counter()
            await provider.destroy(f"c{index}")
            destroys.append(time.perf_counter() - started)
        print(f"create (mkfs + mount of a {settings.sandbox_disk_mb} MB image included): {median_ms(creates)}")
        print(f"destroy (umount included): {median_ms(destroys)}")

        await provider.create(spec_for("spawn"))
        filtered, unfiltered = provider.seccomp, dataclasses.replace(provider.seccomp, program=None, required=False)
        samples: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(runs):
            for with_filter in (True, False):
                provider.seccomp = filtered if with_filter else unfiltered
                started = time.perf_counter()
                result = await provider.exec("spawn", ["true"], {"PATH": "/usr/bin:/bin"}, 10)
                samples[with_filter].append(time.perf_counter() - started)
                assert result.exit_code == 0, result.stderr
        provider.seccomp = filtered
        print(f"exec `true` with seccomp: {median_ms(samples[True])}, without: {median_ms(samples[False])}")
        await provider.destroy("spawn")
    finally:
        unmount_below(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
