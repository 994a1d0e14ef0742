"""The contract every `SandboxProvider` keeps, through its interface alone: lifecycle idempotency, adoption by
a restarted control plane, exec, file operations under the API's path rules, state across stop/start, limits
in force, sandboxes kept off each other's network, and freezing (where the provider can). Parametrized over
providers (`harness.py`): a new provider joins by adding its harness to `HARNESSES`; provider-specific checks
stay in its own test module."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from chowder.core.errors import BadRequest, FileTooLarge, NotFound, ProviderError
from chowder.core.settings import MIB
from chowder.sandbox.base import SandboxProvider, SandboxState
from chowder.sandbox.output import EXEC_TIMEOUT_EXIT
from chowder.sandbox.process import ProcessProvider
from tests.providers.docker_harness import DockerHarness
from tests.providers.harness import (
    RESOURCES,
    SECRET,
    SHELL_ENV,
    TICKS_JS,
    ProcessHarness,
    ProviderHarness,
    get_json,
    held,
    own_settings,
    refused_as_escapes,
    run,
    ticking_past,
)
from tests.providers.kubernetes_harness import KubernetesHarness


def _process(data_dir: Path, _request: pytest.FixtureRequest) -> ProviderHarness:
    settings = own_settings(data_dir)
    return ProcessHarness(settings, ProcessProvider(settings))


def _docker(data_dir: Path, request: pytest.FixtureRequest) -> ProviderHarness:
    request.getfixturevalue("docker_host")  # a real engine, in DOCKER_HOST
    return DockerHarness.on(data_dir)


def _kubernetes(data_dir: Path, request: pytest.FixtureRequest) -> ProviderHarness:
    return KubernetesHarness.on(data_dir, request.getfixturevalue("kube_cluster"))


HARNESSES: dict[str, Callable[[Path, pytest.FixtureRequest], ProviderHarness]] = {
    "process": _process,
    "docker": _docker,
    "kubernetes": _kubernetes,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[ProviderHarness]:
    """Whatever the test did, every sandbox it left is destroyed, by the provider that made it."""
    made = HARNESSES[request.param](data_dir, request)
    yield made

    async def destroy_all() -> None:
        for sandbox_id in await made.provider.sandboxes():
            await made.provider.destroy(sandbox_id)

    run(destroy_all())


async def _shell(provider: SandboxProvider, sandbox_id: str, command: str) -> tuple[int, str]:
    result = await provider.exec(sandbox_id, ["sh", "-c", command], SHELL_ENV, 10)
    return result.exit_code, result.stdout.strip()


def test_create_and_destroy_are_idempotent_and_listed(harness: ProviderHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        with pytest.raises(ProviderError, match="does not exist"):
            await provider.info("a")
        first = await provider.create(harness.spec("a"))
        assert await provider.create(harness.spec("a")) == first
        assert await provider.info("a") == first
        await provider.create(harness.spec("b"))
        listed = await provider.sandboxes()
        assert set(listed) == {"a", "b"}
        assert listed["a"].state == SandboxState.STOPPED and listed["a"].labels == {"instance_id": "inst-a"}
        assert (await provider.observe("nope")).state == SandboxState.MISSING
        await provider.destroy("a")
        await provider.destroy("a")
        assert (await provider.observe("a")).state == SandboxState.MISSING and set(await provider.sandboxes()) == {"b"}

    run(scenario())


def test_start_serves_stop_ends_everything_and_state_survives(harness: ProviderHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        info = await provider.create(harness.spec("web"))
        await provider.write_file("web", "state/notes.txt", b"remember me")
        await provider.start("web", harness.serve(info))
        status = await provider.observe("web")
        assert status.state == SandboxState.RUNNING and status.labels == {"instance_id": "inst-web"}
        answer = get_json(status.endpoint or "")
        assert answer["secret"] == hashlib.sha256(SECRET.encode()).hexdigest()
        await provider.start("web", harness.serve(info))
        assert get_json(status.endpoint or "")["pid"] == answer["pid"], "a second start keeps the running one"
        assert harness.running_processes(info)

        await provider.stop("web", grace_s=5)
        await provider.stop("web", grace_s=5)
        assert harness.running_processes(info) == [], "nothing of the sandbox outlives its stop"
        assert (await provider.observe("web")).state == SandboxState.STOPPED
        assert await provider.read_file("web", "state/notes.txt", max_bytes=1024) == b"remember me"

        await provider.start("web", harness.serve(info))
        endpoint = (await provider.observe("web")).endpoint or ""
        assert get_json(endpoint)["secret"] == answer["secret"]
        assert await provider.read_file("web", "state/notes.txt", max_bytes=1024) == b"remember me"

    run(scenario())


def test_a_restarted_control_plane_adopts_running_sandboxes_and_can_destroy_them(harness: ProviderHarness) -> None:
    async def scenario() -> None:
        info = await harness.provider.create(harness.spec("adopt"))
        await harness.provider.start("adopt", harness.serve(info))
        endpoint = (await harness.provider.observe("adopt")).endpoint or ""
        pid = get_json(endpoint)["pid"]
        successor = harness.restarted()
        status = await successor.observe("adopt")
        assert status.state == SandboxState.RUNNING and status.labels == {"instance_id": "inst-adopt"}
        assert status.endpoint == endpoint and get_json(endpoint)["pid"] == pid, "found, not restarted"
        assert await successor.info("adopt") == info
        assert set(await successor.sandboxes()) == {"adopt"}
        await successor.destroy("adopt")
        assert harness.running_processes(info) == []
        assert (await harness.provider.observe("adopt")).state == SandboxState.MISSING

    run(scenario())


def test_exec_runs_in_the_root_and_a_timeout_kills_what_it_started(harness: ProviderHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        info = await provider.create(harness.spec("cmd"))
        result = await provider.exec("cmd", ["sh", "-c", "pwd; echo oops >&2; exit 3"], SHELL_ENV, 10)
        assert (result.exit_code, result.stdout.strip(), result.stderr.strip()) == (3, info.root, "oops")
        started = time.monotonic()
        slow = await provider.exec("cmd", ["sh", "-c", "(sleep 30.4321 &); exec sleep 31.4321"], SHELL_ENV, 0.5)
        assert slow.exit_code == EXEC_TIMEOUT_EXIT and "timed out" in slow.stderr
        assert time.monotonic() - started < 5
        assert await _shell(provider, "cmd", "pgrep -f 'sleep 3[01].4321' || true") == (0, "")
        flood = await provider.exec("cmd", ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x"], SHELL_ENV, 30)
        assert flood.exit_code == 0 and flood.stdout.startswith("x" * 1000) and len(flood.stdout) < 5 << 20
        assert "output cut at 4 MiB (15805696 bytes more)" in flood.stdout, "the rest was drained, not kept"

    run(scenario())


def test_file_operations_follow_the_path_rules(harness: ProviderHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        info = await provider.create(harness.spec("files"))
        await provider.write_file("files", "a/b/c.txt", b"one")
        await provider.write_file("files", "a/b/c.txt", b"two")
        assert await provider.read_file("files", "./a//b/c.txt", max_bytes=1024) == b"two"
        assert await _shell(provider, "files", "cat a/b/c.txt") == (0, "two"), "the agent sees what was written"
        await provider.mkdir("files", "d/e")
        entries = await provider.list_dir("files", "")
        assert [(e.name, e.path, e.is_dir) for e in entries] == [("a", "a", True), ("d", "d", True)]
        (inner,) = await provider.list_dir("files", "a/b")
        assert (inner.path, inner.size, oct(inner.mode)[-3:]) == ("a/b/c.txt", 3, "644")
        await provider.move("files", "a/b/c.txt", "d/e/moved.txt")
        assert await provider.read_file("files", "d/e/moved.txt", max_bytes=1024) == b"two"
        await provider.delete_path("files", "d")
        assert [e.name for e in await provider.list_dir("files", "")] == ["a"]
        for missing in (provider.read_file("files", "nope", max_bytes=1024), provider.delete_path("files", "nope")):
            with pytest.raises(NotFound, match="File not found."):
                await missing

        # Links the agent makes: inside the root they are followed, out of it they are refused.
        await provider.write_file("files", "a/x.txt", b"x")
        links = f"ln -s {info.root}/a inside && ln -s a relative && ln -s / evil && ln -s /etc/hostname evil_file"
        assert (await _shell(provider, "files", links))[0] == 0
        assert await provider.read_file("files", "inside/x.txt", max_bytes=1024) == b"x"
        assert await provider.read_file("files", "relative/x.txt", max_bytes=1024) == b"x"
        escapes = [
            provider.read_file("files", "../x", max_bytes=1024),
            provider.read_file("files", "/etc/hostname", max_bytes=1024),
            provider.read_file("files", "evil/etc/hostname", max_bytes=1024),
            provider.read_file("files", "evil_file", max_bytes=1024),
            provider.open_file("files", "evil_file"),
            provider.list_dir("files", "evil"),
            provider.write_file("files", "evil/tmp/owned", b"owned"),
            provider.write_file("files", "a/../../x", b"owned"),
            provider.mkdir("files", "evil/new"),
            provider.move("files", "a/x.txt", "evil/x.txt"),
            provider.move("files", "evil/etc/hostname", "stolen"),
            provider.delete_path("files", "evil/etc/hostname"),
        ]
        await refused_as_escapes(escapes)
        await provider.write_file("files", "evil_file", b"replaces the link, not the target")
        assert await _shell(provider, "files", "test -L evil_file || echo regular") == (0, "regular")
        await provider.delete_path("files", "evil")
        assert await _shell(provider, "files", "test -e /etc/hostname && echo kept") == (0, "kept")
        with pytest.raises(ProviderError, match="does not exist"):
            await provider.read_file("ghost", "x", max_bytes=1024)

    run(scenario())


@pytest.mark.timeout(60)
def test_reads_are_bounded_and_refuse_what_would_block(harness: ProviderHarness) -> None:
    """The tenant decides what its files are: a FIFO is refused at once (no wait for a writer, no endless read),
    a 20 GiB sparse file fails within its reader's bound, a log gives its tail, a download streams its exact size."""
    provider = harness.provider

    async def scenario() -> None:
        await provider.create(harness.spec("bounds"))
        assert (await _shell(provider, "bounds", "mkfifo fifo && truncate -s 20G sparse"))[0] == 0
        log = b"".join(b"line %d\n" % i for i in range(100_000))
        await provider.write_file("bounds", "log", log)
        async with asyncio.timeout(5):
            for attempt in (provider.read_file("bounds", "fifo", max_bytes=1024), provider.open_file("bounds", "fifo")):
                with pytest.raises(BadRequest, match="Not a regular file."):
                    await attempt
            with pytest.raises(FileTooLarge, match="The file is larger than 4 MiB."):
                await provider.read_file("bounds", "sparse", max_bytes=4 * MIB)
        assert await provider.read_file("bounds", "log", max_bytes=len(log)) == log
        with pytest.raises(FileTooLarge):
            await provider.read_file("bounds", "log", max_bytes=len(log) - 1)
        assert await provider.read_file("bounds", "log", max_bytes=11, tail=True) == b"line 99999\n"
        download = await provider.open_file("bounds", "log")
        chunks = [chunk async for chunk in download.chunks]
        assert download.size == len(log) and b"".join(chunks) == log and max(map(len, chunks)) <= 256 * 1024
        huge = await provider.open_file("bounds", "sparse")
        assert huge.size == 20 * 1024**3 and set(await anext(huge.chunks)) == {0}
        await huge.chunks.aclose()
        # Shrunk after it was opened: the download fails, or (a provider that streams it ahead, from the sandbox)
        # gives what it held then; never fewer bytes than its size promised.
        shrinking = await provider.open_file("bounds", "log")
        assert (await _shell(provider, "bounds", "truncate -s 10 log"))[0] == 0
        try:
            assert b"".join([chunk async for chunk in shrinking.chunks]) == log
        except ProviderError as shrank:
            assert shrank.detail == "The file shrank while it was being read."

    run(scenario())


def test_the_limits_asked_for_are_in_force(harness: ProviderHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        info = await provider.create(harness.spec("limited"))
        await provider.start("limited", harness.serve(info))
        get_json((await provider.observe("limited")).endpoint or "")
        applied = harness.applied_limits("limited")
        if applied is None:
            pytest.skip(f"{harness.name}: this host applies no resource limits")
        enforced = {field: value for field, value in asdict(RESOURCES).items() if field not in harness.unenforced}
        assert {field: value for field, value in asdict(applied).items() if field in enforced} == enforced

    run(scenario())


def test_sandboxes_are_kept_off_each_others_network(harness: ProviderHarness) -> None:
    if not harness.network_isolated:
        pytest.skip(f"{harness.name}: no per-sandbox network on this host")
    provider = harness.provider

    async def scenario() -> None:
        endpoints = {}
        infos = {}
        for name in ("a", "b"):
            infos[name] = await provider.create(harness.spec(name))
            await provider.start(name, harness.serve(infos[name]))
            endpoints[name] = (await provider.observe(name)).endpoint or ""
            get_json(endpoints[name])  # the control plane reaches each
        own = await provider.exec("a", harness.reach(infos["a"], endpoints["a"]), SHELL_ENV, 10)
        assert own.exit_code == 0, "the probe works: a sandbox reaches its own gateway"
        other = await provider.exec("a", harness.reach(infos["a"], endpoints["b"]), SHELL_ENV, 10)
        assert other.exit_code != 0, "a sandbox reaches another one's gateway"

    run(scenario())


def _freezing(harness: ProviderHarness) -> SandboxProvider:
    if not harness.provider.freezes:
        pytest.skip(f"{harness.name}: this provider cannot freeze a sandbox here")
    return harness.provider


@pytest.mark.timeout(120)
def test_a_frozen_sandbox_stays_running_and_makes_no_progress_until_thawed(
    harness: ProviderHarness, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = _freezing(harness)

    async def scenario() -> list[float]:
        info = await provider.create(harness.spec("ice"))
        await provider.start("ice", harness.serve(info, TICKS_JS))
        count = await ticking_past(provider, "ice", 0)
        thaws = []
        for _ in range(5):
            await provider.freeze("ice")
            await provider.freeze("ice")
            assert (await provider.observe("ice")).state == SandboxState.RUNNING
            assert (await provider.sandboxes())["ice"].state == SandboxState.RUNNING
            count = await held(provider, "ice")
            started = time.perf_counter()
            await provider.thaw("ice")
            thaws.append(time.perf_counter() - started)
            await provider.thaw("ice")
            count = await ticking_past(provider, "ice", count)

        # The file operations and the egress policy work on it and leave it frozen; exec thaws it.
        await provider.freeze("ice")
        await provider.write_file("ice", "note", b"written while frozen")
        assert await provider.read_file("ice", "note", max_bytes=64) == b"written while frozen"
        await provider.set_egress("ice", "none")
        count = await held(provider, "ice")
        assert await _shell(provider, "ice", "echo thawed") == (0, "thawed")
        count = await ticking_past(provider, "ice", count)

        # A command that runs as the sandbox is frozen ends once it is thawed.
        command = asyncio.create_task(_shell(provider, "ice", "sleep 1; echo done"))
        await asyncio.sleep(0.5)
        await provider.freeze("ice")
        await asyncio.sleep(1)
        await provider.thaw("ice")
        assert await command == (0, "done")
        return thaws

    thaws = run(scenario())
    figures = f"median {statistics.median(thaws) * 1e3:.1f} ms, max {max(thaws) * 1e3:.1f} ms"
    with capsys.disabled():  # a figure for the run's output, which pytest would capture
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"{harness.name}: thaw of a frozen sandbox took {figures} ({len(thaws)} thaws)")
    assert max(thaws) < 2.0


def test_stop_and_destroy_thaw_a_frozen_sandbox_first(harness: ProviderHarness) -> None:
    provider = _freezing(harness)

    async def scenario() -> None:
        info = await provider.create(harness.spec("ice"))
        for end in ("stop", "destroy"):
            await provider.start("ice", harness.serve(info))
            get_json((await provider.observe("ice")).endpoint or "")
            await provider.freeze("ice")
            started = time.monotonic()
            if end == "stop":
                await provider.stop("ice", grace_s=10)
                assert time.monotonic() - started < 5, "its app got the SIGTERM, at once"
                assert (await provider.observe("ice")).state == SandboxState.STOPPED
            else:
                await provider.destroy("ice")
                assert (await provider.observe("ice")).state == SandboxState.MISSING
            assert harness.running_processes(info) == []
            await provider.thaw("ice")
            with pytest.raises(ProviderError, match="not running|does not exist"):
                await provider.freeze("ice")

    run(scenario())


def test_a_provider_that_cannot_freeze_says_so(harness: ProviderHarness) -> None:
    provider = harness.provider
    if provider.freezes:
        pytest.skip(f"{harness.name}: this provider freezes sandboxes")

    async def scenario() -> None:
        await provider.create(harness.spec("ice"))
        with pytest.raises(ProviderError, match="cannot freeze"):
            await provider.freeze("ice")
        await provider.thaw("ice")
        await provider.thaw("ghost")
        assert (await provider.observe("ice")).state == SandboxState.STOPPED

    run(scenario())
