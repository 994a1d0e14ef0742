"""What the docker provider keeps beyond the contract, on a real engine: the hardened container as the engine
applied it and as the agent finds it, the egress policy on the sandbox's own bridge (the outside world, the model
endpoint, the host), and a refusal that leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chowder.core.errors import ProviderError
from chowder.sandbox.base import SandboxState
from chowder.sandbox.network import routed_networks
from tests.fakes.outside import answering, bind_outside
from tests.providers.docker_harness import DockerHarness
from tests.providers.harness import SHELL_ENV, get_json, run


@pytest.fixture
def harness(docker_host: str, data_dir: Path) -> Iterator[DockerHarness]:
    made = DockerHarness.on(data_dir)
    yield made

    async def destroy_all() -> None:
        for sandbox_id in await made.provider.sandboxes():
            await made.provider.destroy(sandbox_id)

    run(destroy_all())


def test_the_gateway_container_is_hardened_as_the_engine_reports_and_the_agent_finds(harness: DockerHarness) -> None:
    provider = harness.provider

    async def scenario() -> None:
        info = await provider.create(harness.spec("hard"))
        await provider.start("hard", harness.serve(info))
        get_json((await provider.observe("hard")).endpoint or "")
        (container,) = harness.containers("hard", role="main")
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ReadonlyRootfs"] is True and host["Init"] is True and host["Privileged"] is False
        assert host["PortBindings"] == {"18789/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
        uid = int(container.attrs["Config"]["User"].split(":")[0])
        assert uid >= harness.settings.sandbox_uid_base
        inside = await provider.exec(
            "hard",
            ["sh", "-c", "id -u; grep CapEff /proc/self/status; touch /etc/x 2>&1; cat /proc/1/cmdline | tr '\\0' ' '"],
            SHELL_ENV,
            10,
        )
        lines = inside.stdout.splitlines()
        assert lines[0] == str(uid) and lines[1].split() == ["CapEff:", "0000000000000000"]
        assert "Read-only file system" in lines[2]
        assert lines[3].startswith("/sbin/docker-init") or "init" in lines[3], "an init is PID 1"

    run(scenario())


def test_egress_reaches_the_outside_only_when_open_and_never_the_host(harness: DockerHarness, outside: str) -> None:
    provider = harness.provider
    model_host, model_port = provider.sandbox_facing_address()
    host_side = socket.create_server(("0.0.0.0", 0))  # every host address: the sandbox must reach none of them

    async def scenario(outside_port: int, host_port: int) -> None:
        info = await provider.create(harness.spec("egress"))
        network = harness.network("egress")
        gateway = network["IPAM"]["Config"][0]["Gateway"]

        async def reaches(url: str) -> bool:
            return (await provider.exec("egress", harness.reach_url(info, url), SHELL_ENV, 10)).exit_code == 0

        assert await reaches(f"http://{outside}:{outside_port}/"), "open egress reaches the outside"
        assert await reaches(f"http://{model_host}:{model_port}/"), "the model endpoint is reachable"
        for host_address in (gateway, "127.0.0.1", _host_address()):
            assert not await reaches(f"http://{host_address}:{host_port}/"), f"the host at {host_address}"
        await provider.set_egress("egress", "none")
        assert not await reaches(f"http://{outside}:{outside_port}/"), "egress none blocks the outside"
        assert await reaches(f"http://{model_host}:{model_port}/"), "and keeps the model endpoint"
        await provider.create(harness.spec("egress", egress="open"))
        assert await reaches(f"http://{outside}:{outside_port}/"), "a create sets the policy again"

    model_side = socket.create_server((model_host, model_port))
    with answering(bind_outside()) as outside_port, answering(model_side), answering(host_side):
        run(scenario(outside_port, host_side.getsockname()[1]))


def test_without_the_image_a_create_is_refused_and_leaves_nothing(harness: DockerHarness) -> None:
    settings = harness.settings.model_copy(update={"docker_image": "chowder-gateway:absent"})
    refusing = DockerHarness(settings, type(harness.provider)(settings))

    async def scenario() -> None:
        with pytest.raises(ProviderError, match=r"image chowder-gateway:absent is not in the engine.*runtime image"):
            await refusing.provider.create(refusing.spec("never"))
        assert (await refusing.provider.observe("never")).state == SandboxState.MISSING
        assert refusing.containers("never", role="main") == [] and "REFUSING" in refusing.provider.isolation_report()

    run(scenario())


def _host_address() -> str:
    """One of the host's own global addresses (its LAN side): tried only from inside a sandbox, where it must fail."""
    listed = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout)
    return next(
        str(address["local"])
        for link in listed
        if not link["ifname"].startswith(("chw", "cht", "lo"))
        for address in link.get("addr_info", [])
        if address.get("scope") == "global"
    )


def test_a_new_sandbox_network_avoids_what_the_host_already_routes(harness: DockerHarness) -> None:
    """A bridge that a dead engine left behind keeps its route: a network made on its block would lose its traffic
    to it (every published port timing out). Here a link of the test's own holds the block the next one would take."""
    provider = harness.provider
    taken = {str(block) for block in routed_networks()}
    subnet = ipaddress.ip_network(harness.settings.docker_subnet)
    squatted = next(block for block in subnet.subnets(new_prefix=29) if str(block) not in taken)
    link = f"chtstale{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{squatted.network_address + 1}/29", "dev", link], check=True)
        subprocess.run(["ip", "link", "set", link, "up"], check=True)

        async def scenario() -> None:
            info = await provider.create(harness.spec("routed"))
            await provider.start("routed", harness.serve(info))
            assert "pid" in get_json((await provider.observe("routed")).endpoint or ""), "the published port answers"

        run(scenario())
        (config,) = harness.network("routed")["IPAM"]["Config"]
        assert not ipaddress.ip_network(config["Subnet"]).overlaps(squatted)
    finally:
        subprocess.run(["ip", "link", "delete", link], check=False)
