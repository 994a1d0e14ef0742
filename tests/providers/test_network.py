"""The host side of sandbox networks (`HostNetwork`), against the real kernel and nftables: what is shared by
every control plane on the host survives another one starting, and per-sandbox rules come and go with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from chowder.sandbox.network import NETNS_DIR, TABLE, HostNetwork

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="sandbox networks need root and nftables"
)
SUBNET = "10.231.0.0/16"


def nft_set(name: str) -> str:
    return subprocess.run(["nft", "list", "set", "inet", TABLE, name], capture_output=True, text=True).stdout


@pytest.fixture
def sandbox_id() -> Iterator[str]:
    name = f"nettest{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["ip", "netns", "delete", f"chowder-{name}"], capture_output=True)


def test_another_control_plane_starting_keeps_the_rules_of_running_sandboxes(sandbox_id: str) -> None:
    network = HostNetwork(SUBNET, 18001)
    attached = network.attach(sandbox_id, None, "open")
    try:
        HostNetwork(SUBNET, 18002)  # as a second server, a worker or `chowder doctor` would
        assert f'"{attached.iface}" . 10.231.0.1 . 18001' in nft_set("model_endpoints")
        assert f'"{attached.iface}"' in nft_set("egress_open")
    finally:
        network.detach(sandbox_id, attached.index)


def test_attach_is_idempotent_egress_toggles_and_detach_removes_everything(sandbox_id: str) -> None:
    network = HostNetwork(SUBNET, 18001)
    first = network.attach(sandbox_id, None, "none")
    assert network.attach(sandbox_id, first.index, "none") == first
    assert f'"{first.iface}"' not in nft_set("egress_open")
    network.set_egress(first, "open")
    assert f'"{first.iface}"' in nft_set("egress_open")
    network.detach(sandbox_id, first.index)
    network.detach(sandbox_id, first.index)
    assert not (NETNS_DIR / first.netns).exists()
    assert not os.path.exists(f"/sys/class/net/{first.iface}")
    assert f'"{first.iface}"' not in nft_set("egress_open") + nft_set("model_endpoints")


def test_a_namespace_lost_to_a_reboot_is_made_again(sandbox_id: str) -> None:
    network = HostNetwork(SUBNET, 18001)
    first = network.attach(sandbox_id, None, "open")
    subprocess.run(["ip", "netns", "delete", first.netns], check=True)  # what a reboot does to /run/netns
    again = network.attach(sandbox_id, first.index, "open")
    try:
        assert (NETNS_DIR / again.netns).exists() and f'"{again.iface}"' in nft_set("model_endpoints")
    finally:
        network.detach(sandbox_id, again.index)
