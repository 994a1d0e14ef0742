"""What the `process` provider does beyond the contract every provider keeps (`test_contract.py`): its box
layout, uids and capabilities, adoption after its control plane is killed, host-side links, cgroups, the kill
escalation. A tiny Node HTTP server is the workload."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.core.errors import ProviderError
from chowder.core.settings import Settings
from chowder.sandbox.base import SandboxState
from chowder.sandbox.isolation import INSIDE_UID
from chowder.sandbox.output import EXEC_TIMEOUT_EXIT
from chowder.sandbox.process import ProcessProvider
from chowder.sandbox.registry import make_provider
from tests.providers.harness import (
    NODE,
    NODE_DIR,
    REPO,
    SECRET,
    destroyed_after,
    get_json,
    launch_for,
    launch_idle,
    make_settings,
    marked_processes,
    marker,
    own_settings,
    refused_as_escapes,
    required_as_root,
    run,
    spec_for,
    status_line,
)

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return own_settings(data_dir)


@pytest.fixture
def provider(settings: Settings) -> Iterator[ProcessProvider]:
    """Whatever the test did, destroy every sandbox of the data dir (also those of child control planes).

    With the same instance, which reaps the processes it spawned: no zombie outlives the test run.
    """
    yield from destroyed_after(ProcessProvider(settings))


def isolated(provider: ProcessProvider) -> bool:
    return provider.isolation.enabled and provider.refusal() is None


def test_create_is_idempotent_and_lays_out_a_private_box(provider: ProcessProvider, settings: Settings) -> None:
    async def scenario() -> None:
        first = await provider.create(spec_for("a"))
        assert await provider.create(spec_for("a")) == first
        await provider.create(spec_for("b"))
        sandbox = settings.data_dir.resolve() / "sandboxes" / "a"
        assert first.root == str(sandbox / "box" / "root") and first.home == str(sandbox / "box" / "home")
        assert all((sandbox / "box" / name).is_dir() for name in ("root", "home", "logs", "tmp"))
        assert (sandbox / "meta.json").stat().st_mode & 0o777 == 0o600
        assert (sandbox / "box").stat().st_mode & 0o777 == 0o700
        assert sandbox.parent.stat().st_mode & 0o777 == 0o700, "no sandbox uid needs to traverse the data dir"
        meta = json.loads((sandbox / "meta.json").read_text())
        assert meta["labels"] == {"instance_id": "inst-a"} and meta["read_only_paths"] == [str(NODE_DIR)]
        if provider.isolation.enabled:
            assert meta["uid"] >= settings.sandbox_uid_base and (sandbox / "box").stat().st_uid == meta["uid"]
            assert json.loads((sandbox.parent / "b" / "meta.json").read_text())["uid"] != meta["uid"]
        listed = await provider.sandboxes()
        assert set(listed) == {"a", "b"} and listed["a"].state == SandboxState.STOPPED
        if provider.network is not None:  # each at the sandbox end of its own veth, on the same port
            assert listed["a"].endpoint != listed["b"].endpoint
            assert listed["a"].endpoint == f"http://{provider.network.sandbox_ip(meta['net_index'])}:{first.app_port}"
        assert (await provider.observe("nope")).state == SandboxState.MISSING

    run(scenario())


def test_info_tells_where_things_are_without_creating_anything(provider: ProcessProvider, settings: Settings) -> None:
    async def scenario() -> None:
        with pytest.raises(ProviderError, match="Sandbox placed does not exist."):
            await provider.info("placed")
        assert not (settings.data_dir.resolve() / "sandboxes" / "placed").exists()
        created = await provider.create(spec_for("placed"))
        assert await provider.info("placed") == created
        assert created.read_only_paths == {NODE_DIR: str(NODE_DIR)}, "bound where they are on the host"
        assert created.inside(NODE) == str(NODE)
        with pytest.raises(ProviderError, match="has no read-only path holding"):
            created.inside(REPO / "pyproject.toml")
        host, port = provider.sandbox_facing_address()
        assert created.model_endpoint_url == f"http://{host}:{port}"
        assert created.listen == ("all" if provider.network is not None else "loopback")

    run(scenario())


def test_start_serves_and_stop_ends_the_whole_tree_but_keeps_state(provider: ProcessProvider) -> None:
    async def scenario() -> None:
        info = await provider.create(spec_for("web"))
        await provider.write_file("web", "state/notes.txt", b"remember me")
        await provider.start("web", launch_for(info))
        status = await provider.observe("web")
        assert status.state == SandboxState.RUNNING and status.labels == {"instance_id": "inst-web"}
        answer = get_json(status.endpoint or "")
        assert answer["secret"] == hashlib.sha256(SECRET.encode()).hexdigest()
        await provider.start("web", launch_for(info))  # idempotent: the same server keeps running
        assert get_json(status.endpoint or "")["pid"] == answer["pid"]

        deadline = time.monotonic() + 5
        while not marked_processes(marker(info) + "-child") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tree = marked_processes(marker(info))
        child = marked_processes(marker(info) + "-child")
        assert child and os.getsid(child[0]) == child[0]  # a session leader of its own, out of the app's group
        for pid in tree:
            assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        meta_path = Path(info.root).parents[1] / "meta.json"
        first_pid = json.loads(meta_path.read_text())["pid"]
        assert os.geteuid() != 0 or isolated(provider), f"not isolated as root: {provider.isolation_report()}"
        if isolated(provider):
            meta_uid = json.loads(meta_path.read_text())["uid"]
            assert answer["uid"] == INSIDE_UID, "inside, the sandbox's own uid shows as the overflow uid"
            for pid in tree:
                assert status_line(pid, "Uid") == str(meta_uid) and int(status_line(pid, "CapEff"), 16) == 0

        await provider.stop("web", grace_s=5)
        assert marked_processes(marker(info)) == []
        assert (await provider.observe("web")).state == SandboxState.STOPPED
        await provider.stop("web", grace_s=5)
        assert await provider.read_file("web", "state/notes.txt", max_bytes=1024) == b"remember me"

        await provider.start("web", launch_for(info))
        assert json.loads(meta_path.read_text())["pid"] != first_pid
        assert get_json(status.endpoint or "")["secret"] == answer["secret"]
        assert await provider.read_file("web", "state/notes.txt", max_bytes=1024) == b"remember me"

    run(scenario())


CONTROL_PLANE = """
import asyncio, sys
from pathlib import Path
from tests.providers.harness import launch_for, make_settings, spec_for
from chowder.sandbox.process import ProcessProvider

async def main() -> None:
    provider = ProcessProvider(make_settings(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
    info = await provider.create(spec_for("adopt"))
    await provider.start("adopt", launch_for(info))
    print((await provider.observe("adopt")).endpoint, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


def test_restarted_control_plane_adopts_then_destroy_leaves_nothing(
    provider: ProcessProvider, settings: Settings
) -> None:
    """A real control plane is SIGKILLed after starting a sandbox; a new one finds it running, untouched."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # the orphaned sandbox becomes our child: we can reap it
    try:
        argv = [str(settings.data_dir), str(settings.gateway_port_min), str(settings.sandbox_uid_base)]
        control_plane = subprocess.Popen(
            [sys.executable, "-c", CONTROL_PLANE, *argv], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        endpoint = (control_plane.stdout.readline() if control_plane.stdout else "").strip()
        assert endpoint.startswith("http"), "the child control plane failed to start the sandbox"
        get_json(endpoint)
        info = run(provider.create(spec_for("adopt")))
        before = set(marked_processes(marker(info)))
        assert len(before) >= 3  # wrapper(s), server, its setsid child
        meta_path = settings.data_dir / "sandboxes" / "adopt" / "meta.json"
        pid = json.loads(meta_path.read_text())["pid"]
        control_plane.kill()
        control_plane.wait()
        if control_plane.stdout:
            control_plane.stdout.close()
        time.sleep(0.3)

        async def scenario() -> None:
            status = await provider.observe("adopt")
            assert status.state == SandboxState.RUNNING
            assert json.loads(meta_path.read_text())["pid"] == pid
            assert get_json(status.endpoint or "")["uid"] >= 0
            assert set(marked_processes(marker(info))) == before
            assert set(await provider.sandboxes()) == {"adopt"}
            cgroups = provider.cgroups.dirs("adopt")
            await provider.destroy("adopt")
            assert marked_processes(marker(info)) == []
            assert not meta_path.parent.exists()
            assert not any(directory.exists() for directory in cgroups)
            assert (await provider.observe("adopt")).state == SandboxState.MISSING
            await provider.destroy("adopt")
            assert await provider.sandboxes() == {}

        run(scenario())
        os.waitpid(pid, 0)
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.mark.timeout(60)
def test_a_fifo_as_the_log_file_fails_the_start_at_once_and_holds_no_lock(provider: ProcessProvider) -> None:
    """The log is opened under the provider-wide lock: a FIFO there, with or without a reader, must neither
    block the start nor keep other sandboxes from being created."""

    async def scenario() -> None:
        info = await provider.create(spec_for("fifo-log"))
        log = Path(info.root) / "logs" / "app.out"
        log.parent.mkdir()
        os.mkfifo(log)
        async with asyncio.timeout(5):
            with pytest.raises(ProviderError, match="The log file logs/app.out is not a regular file."):
                await provider.start("fifo-log", launch_idle(info))
            reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
            try:
                with pytest.raises(ProviderError, match="The log file logs/app.out is not a regular file."):
                    await provider.start("fifo-log", launch_idle(info))
            finally:
                os.close(reader)
            await provider.create(spec_for("after"))
        assert (await provider.observe("fifo-log")).state == SandboxState.STOPPED

    run(scenario())


def test_links_out_of_the_root_made_on_the_host_are_refused(provider: ProcessProvider, data_dir: Path) -> None:
    """Links an agent cannot make (into the data dir) are refused all the same, and nothing behind them moves."""

    async def scenario() -> None:
        root = Path((await provider.create(spec_for("files"))).root)
        await provider.write_file("files", "a/x.txt", b"x")
        assert (root / "a").stat().st_uid == root.stat().st_uid, "made as the sandbox's own uid"
        secret = data_dir / "chowder.db"
        secret.write_bytes(b"root only")
        (root / "evil").symlink_to(data_dir)
        (root / "evil_file").symlink_to(secret)
        escapes = [
            provider.read_file("files", "evil/chowder.db", max_bytes=1024),
            provider.open_file("files", "evil/chowder.db"),
            provider.write_file("files", "evil/chowder.db", b"owned"),
            provider.move("files", "evil/chowder.db", "stolen"),
            provider.delete_path("files", "evil/chowder.db"),
        ]
        await refused_as_escapes(escapes)
        await provider.write_file("files", "evil_file", b"replaces the link, not the target")
        await provider.delete_path("files", "evil")
        assert data_dir.is_dir() and secret.read_bytes() == b"root only"

    run(scenario())


def test_an_exec_timeout_leaves_no_process_on_the_host(provider: ProcessProvider) -> None:
    async def scenario() -> None:
        await provider.create(spec_for("cmd"))
        env = {"PATH": "/usr/bin:/bin"}
        slow = await provider.exec("cmd", ["sh", "-c", "(sleep 30.4321 &); exec sleep 31.4321"], env, 0.5)
        assert slow.exit_code == EXEC_TIMEOUT_EXIT
        assert marked_processes("sleep 30.4321") == [] and marked_processes("sleep 31.4321") == []

    run(scenario())


def test_sandboxes_cannot_see_each_other_or_the_data_dir(provider: ProcessProvider, data_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("per-sandbox uids need root")
    required_as_root(isolated(provider), f"no uid + namespace isolation here: {provider.isolation_report()}")

    async def scenario() -> None:
        a = await provider.create(spec_for("a"))
        b = await provider.create(spec_for("b"))
        await provider.write_file("b", "secret.txt", b"b's secret")
        database = data_dir / "chowder.db"
        database.write_bytes(b"database")
        database.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin"}

        async def in_a(command: str) -> tuple[int, str]:
            result = await provider.exec("a", ["sh", "-c", command], env, 10)
            return result.exit_code, result.stdout.strip()

        assert (await in_a(f"cat {b.root}/secret.txt"))[0] != 0
        assert (await in_a(f"cat {database}"))[0] != 0
        a_uid = Path(a.root).stat().st_uid
        assert await in_a("id -u") == (0, str(INSIDE_UID))
        assert await in_a("stat -c %u /usr/bin") == (0, str(INSIDE_UID)), "root's files look like its own"
        assert (await in_a("cat /etc/shadow"))[0] != 0, "but the kernel checks the real uid"
        assert await in_a("grep CapEff /proc/self/status | cut -f2") == (0, "0000000000000000")
        assert await in_a("echo mine > /tmp/marker && cat /tmp/marker") == (0, "mine")
        assert (await provider.exec("b", ["cat", "/tmp/marker"], env, 10)).exit_code != 0
        assert not Path("/tmp/marker").exists()
        # Even without the mount namespace, A's uid cannot enter B's box on the host.
        direct = subprocess.run(
            ["setpriv", f"--reuid={a_uid}", f"--regid={a_uid}", "--clear-groups", "cat", f"{b.root}/secret.txt"],
            capture_output=True,
            text=True,
        )
        assert direct.returncode != 0 and "Permission denied" in direct.stderr

    run(scenario())


def test_cgroup_limits_are_applied_and_removed(provider: ProcessProvider) -> None:
    required_as_root(provider.cgroups.available, f"cgroups not writable here: {provider.cgroups.note}")

    async def scenario() -> None:
        info = await provider.create(spec_for("limited"))
        await provider.start("limited", launch_idle(info))
        await asyncio.sleep(0.2)
        limits = {
            "v1": {"memory.limit_in_bytes": str(256 << 20), "pids.max": "128", "cpu.cfs_quota_us": "50000"},
            "v2": {"memory.max": str(256 << 20), "pids.max": "128", "cpu.max": "50000 100000"},
        }[provider.cgroups.version]
        directories = provider.cgroups.dirs("limited")
        for file, value in limits.items():
            (found,) = [d / file for d in directories if (d / file).exists()]
            assert found.read_text().strip() == value
        for directory in directories:
            members = {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
            assert set(marked_processes(marker(info))) <= members
        await provider.destroy("limited")
        assert not any(directory.exists() for directory in directories)

    run(scenario())


def test_isolation_none_runs_plain_processes(data_dir: Path) -> None:
    settings = make_settings(data_dir, random.randrange(21000, 32000, 100), 260000, sandbox_isolation="none")
    provider = ProcessProvider(settings)
    report = provider.isolation_report()
    assert all(report[m].startswith("off") for m in ("user", "namespaces", "cgroups", "network")), report
    assert "WARNING" in report

    async def scenario() -> None:
        await provider.create(spec_for("plain"))
        result = await provider.exec("plain", ["id", "-u"], {"PATH": "/usr/bin:/bin"}, 10)
        assert result.stdout.strip() == str(os.geteuid())
        await provider.destroy("plain")

    run(scenario())


def test_registry_builds_the_process_provider_and_names_the_supported_ones(settings: Settings) -> None:
    assert isinstance(make_provider(settings), ProcessProvider)
    unknown = Settings.model_construct(**{**settings.model_dump(), "sandbox_provider": "nomad"})
    with pytest.raises(ValueError, match="supported: docker, kubernetes, process"):
        make_provider(unknown)


def test_stop_kill_escalates_when_sigterm_is_ignored(provider: ProcessProvider) -> None:
    async def scenario() -> None:
        info = await provider.create(spec_for("stubborn"))
        await provider.start(
            "stubborn", launch_idle(info, "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);")
        )
        await asyncio.sleep(0.5)  # let Node install its SIGTERM handler
        started = time.monotonic()
        await provider.stop("stubborn", grace_s=0.5)
        assert 0.5 <= time.monotonic() - started < 5
        assert marked_processes(marker(info)) == []

    run(scenario())
