"""A network of its own for every process sandbox: a named network namespace joined to the host by a veth pair,
and one nftables table that decides what a sandbox may reach.

From inside a sandbox: the control plane's model endpoint (one address on the port-less bridge `chowder0`, one
port per control plane) is reachable; the host's other addresses, other sandboxes, loopback, private, shared and
link-local ranges and the host's own LAN are not; the public internet is reachable only for sandboxes whose egress
is open (forwarded and masqueraded; DNS to the host's resolvers is the one private destination let through). No
IPv6 route exists inside. The control plane reaches each gateway at the sandbox end of its veth, which no other
sandbox can.

Interfaces, the table and the bridge are host-wide: every control plane on the host (several data dirs, the test
suite) shares them, and hands out `chw<N>` names under one lock in /run. A sandbox lives in the namespace
`chowder-<sandbox id>`; its address block is the N-th /30 of the subnet (block 0 holds the model address).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chowder.core.errors import ProviderError
from chowder.sandbox.base import BLOCKED, Egress
from chowder.sandbox.isolation import host_lock

TABLE = "chowder"
MODEL_LINK = "chowder0"
IFACE_PREFIX = "chw"
NETNS_DIR = Path("/run/netns")
_TABLE_VERSION = "chowder sandbox networks v1"
_TIMEOUT_S = 20.0
_RULES = """
table inet chowder {
    comment "%(version)s"
    set egress_open { type ifname; }
    set model_endpoints { type ifname . ipv4_addr . inet_service; }
    set resolvers { type ipv4_addr; }
    set blocked { type ipv4_addr; flags interval; auto-merge; }
    chain input {
        type filter hook input priority filter - 10; policy accept;
        iifname "%(prefix)s*" jump sandbox_to_host
    }
    chain sandbox_to_host {
        ct state established,related accept
        meta l4proto tcp iifname . ip daddr . tcp dport @model_endpoints accept
        counter drop
    }
    chain forward {
        type filter hook forward priority filter - 10; policy accept;
        iifname "%(prefix)s*" jump sandbox_out
        oifname "%(prefix)s*" ct state established,related accept
        oifname "%(prefix)s*" counter drop
    }
    chain sandbox_out {
        iifname != @egress_open counter drop
        meta nfproto != ipv4 counter drop
        ip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept
        ip daddr @blocked counter drop
        accept
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        iifname "%(prefix)s*" oifname != "%(prefix)s*" masquerade
    }
}
"""


@dataclass(frozen=True, slots=True)
class Attachment:
    """One sandbox's place on the host network."""

    index: int
    netns: str
    iface: str
    host_ip: str
    sandbox_ip: str

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)


class HostNetwork:
    """The host side of sandbox networks: set up once per control plane (idempotent), then attach and detach."""

    def __init__(self, subnet: str, model_port: int) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        if self.subnet.version != 4 or self.subnet.prefixlen > 24:
            raise ValueError(f"Sandbox subnet {subnet} must be an IPv4 network of /24 or larger.")
        self.model_address = str(self.subnet.network_address + 1)
        self.model_port = model_port
        self.problem: str | None = None
        self.note = ""
        try:
            self._setup()
        except ProviderError as exc:
            self.problem = exc.detail
        if self.problem is None:
            resolvers = ", ".join(host_resolvers()) or "none usable"
            self.note = (
                f"in force: own namespace per sandbox (veth, {self.subnet}); model endpoint {self.model_address}:"
                f"{model_port}; egress per instance (open: internet only; DNS to {resolvers}); "
                "no host, loopback, private or link-local destinations"
            )
        else:
            self.note = f"NOT in force: {self.problem}"

    def attach(self, sandbox_id: str, known_index: int | None, egress: Egress) -> Attachment:
        """The sandbox's namespace, veth and rules, made or repaired (a host reboot empties /run/netns)."""
        netns = f"chowder-{sandbox_id}"
        with host_lock("network"):
            attachment = self._existing(netns, known_index)
            if attachment is None:
                attachment = self._create(netns)
            self._admit(attachment.iface, egress)
        return attachment

    def admit(self, iface: str, egress: Egress) -> None:
        """Put a host interface an engine made for one sandbox (a `chw*` bridge) under the same rules as a veth:
        its model endpoint and its egress."""
        with host_lock("network"):
            self._admit(iface, egress)

    def release(self, iface: str) -> None:
        """Idempotent: the interface's rules go; the interface itself is its engine's."""
        with host_lock("network"):
            _set_egress(iface, "none")
            _purge_endpoints(iface)

    def _admit(self, iface: str, egress: Egress) -> None:
        _purge_endpoints(iface)
        _nft(f"add element inet {TABLE} model_endpoints {{ {iface} . {self.model_address} . {self.model_port} }}")
        _set_egress(iface, egress)

    def set_egress(self, attachment: Attachment, egress: Egress) -> None:
        with host_lock("network"):
            _set_egress(attachment.iface, egress)

    def detach(self, sandbox_id: str, index: int | None) -> None:
        """Idempotent. The veth pair is deleted first: the kernel tears a deleted namespace down later, and its
        interface name must be free when this returns."""
        netns = f"chowder-{sandbox_id}"
        with host_lock("network"):
            if index is not None and self._owns(netns, index):
                iface = f"{IFACE_PREFIX}{index}"
                _set_egress(iface, "none")
                _purge_endpoints(iface)
                _run(["ip", "link", "delete", iface])
            if (NETNS_DIR / netns).exists():
                _run(["ip", "netns", "delete", netns])

    def _setup(self) -> None:
        missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
        if missing:
            packages = {"ip": "iproute2", "nft": "nftables"}
            names = " ".join(packages[tool] for tool in missing)
            raise ProviderError(f"{', '.join(missing)} not found (install: apt-get install {names})")
        if os.geteuid() != 0:
            raise ProviderError("network namespaces need the control plane to run as root")
        with host_lock("network"):
            self._ensure_table()
            self._ensure_model_link()
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")

    def _ensure_table(self) -> None:
        try:
            listed = _run(["nft", "-j", "list", "tables"])
        except ProviderError as exc:
            raise ProviderError(f"nftables cannot be used here: {exc.detail}") from exc
        tables = [entry["table"] for entry in json.loads(listed)["nftables"] if "table" in entry]
        if any(table["family"] == "inet" and table["name"] == TABLE for table in tables):
            # The plain listing: nft's JSON leaves the table's comment out.
            if _TABLE_VERSION in _run(["nft", "list", "table", "inet", TABLE]):
                return
            _nft(f"delete table inet {TABLE}")
        _nft(_RULES % {"version": _TABLE_VERSION, "prefix": IFACE_PREFIX})
        blocked = [*BLOCKED, *_host_lans()]
        _nft(f"add element inet {TABLE} blocked {{ {', '.join(blocked)} }}")
        if resolvers := host_resolvers():
            _nft(f"add element inet {TABLE} resolvers {{ {', '.join(resolvers)} }}")

    def _ensure_model_link(self) -> None:
        if not _link_exists(MODEL_LINK):
            _run(["ip", "link", "add", MODEL_LINK, "type", "bridge"])
        addresses = _ip_json(["-4", "addr", "show", "dev", MODEL_LINK])
        if not any(a.get("local") == self.model_address for link in addresses for a in link.get("addr_info", [])):
            _run(["ip", "addr", "add", f"{self.model_address}/32", "dev", MODEL_LINK])
        _run(["ip", "link", "set", MODEL_LINK, "up"])

    def sandbox_ip(self, index: int) -> str:
        return self._block(index)[1]

    def _block(self, index: int) -> tuple[str, str]:
        base = self.subnet.network_address + 4 * index
        if base + 3 > self.subnet.broadcast_address:
            raise ProviderError(f"The sandbox subnet {self.subnet} is full.")
        return str(base + 1), str(base + 2)

    def _owns(self, netns: str, index: int) -> bool:
        """Whether `chw<index>` is this namespace's veth (the index may have gone to another sandbox since)."""
        if not (NETNS_DIR / netns).exists():
            return False
        _, sandbox_ip = self._block(index)
        links = _ip_json(["-n", netns, "-4", "addr", "show", "dev", "eth0"], check=False)
        return any(a.get("local") == sandbox_ip for link in links for a in link.get("addr_info", []))

    def _existing(self, netns: str, index: int | None) -> Attachment | None:
        if index is None or not self._owns(netns, index) or not _link_exists(f"{IFACE_PREFIX}{index}"):
            return None
        host_ip, sandbox_ip = self._block(index)
        return Attachment(index, netns, f"{IFACE_PREFIX}{index}", host_ip, sandbox_ip)

    def _create(self, netns: str) -> Attachment:
        """A fresh namespace with the lowest free index; leftovers of a half-made one are removed first."""
        if (NETNS_DIR / netns).exists():
            _run(["ip", "netns", "delete", netns])
        taken = {
            int(name[len(IFACE_PREFIX) :])
            for name in os.listdir("/sys/class/net")
            if name.startswith(IFACE_PREFIX) and name[len(IFACE_PREFIX) :].isdigit()
        }
        index = next(i for i in range(1, 1 << 20) if i not in taken)
        host_ip, sandbox_ip = self._block(index)
        iface = f"{IFACE_PREFIX}{index}"
        _run(["ip", "netns", "add", netns])
        try:
            _run(["ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", netns])
            _run(["ip", "link", "set", iface, "addrgenmode", "none"])
            _run(["ip", "addr", "add", f"{host_ip}/30", "dev", iface])
            _run(["ip", "link", "set", iface, "up"])
            inside = [
                "link set lo up",
                "link set eth0 addrgenmode none",
                f"addr add {sandbox_ip}/30 dev eth0",
                "link set eth0 up",
                f"route add default via {host_ip}",
            ]
            _run(["ip", "-n", netns, "-batch", "-"], stdin="\n".join(inside) + "\n")
        except ProviderError:
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
            raise
        return Attachment(index, netns, iface, host_ip, sandbox_ip)


def _set_egress(iface: str, egress: Egress) -> None:
    """Membership of `egress_open`; nft 1.0.6 has no `destroy`, so a missing element's delete is tolerated."""
    if egress == "open":
        _nft(f"add element inet {TABLE} egress_open {{ {iface} }}")
    else:
        _nft(f"delete element inet {TABLE} egress_open {{ {iface} }}", missing_ok=True)


def _purge_endpoints(iface: str) -> None:
    """Model endpoint rules naming `iface` (perhaps left by another sandbox that had the name before)."""
    listed = json.loads(_run(["nft", "-j", "list", "set", "inet", TABLE, "model_endpoints"]))
    for entry in listed.get("nftables", []):
        for element in (entry.get("set") or {}).get("elem", []):
            name, address, port = element["concat"]
            if name == iface:
                _nft(f"delete element inet {TABLE} model_endpoints {{ {name} . {address} . {port} }}", missing_ok=True)


def host_resolvers() -> list[str]:
    """The host's IPv4 name servers a sandbox can use (a loopback resolver is out of its reach)."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(parts[1])
                if address.version == 4 and not address.is_loopback:
                    found.append(str(address))
    return found


def _host_lans() -> list[str]:
    """Networks directly attached to the interfaces that carry the host's default routes: its own LAN."""
    gateways = {route.get("dev") for route in _ip_json(["-4", "route", "show", "default"])}
    lans = []
    for route in _ip_json(["-4", "route", "show", "scope", "link"]):
        if route.get("dev") in gateways and "/" in str(route.get("dst")):
            lans.append(str(route["dst"]))
    return lans


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def routed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """What the host routes to now, besides its default route: a new sandbox network must overlap none of it (a
    bridge an engine that died left behind still holds its route, and would swallow the new network's traffic)."""
    routed = []
    for route in _ip_json(["-4", "route", "show"], check=False):
        destination = str(route.get("dst", "default"))
        with contextlib.suppress(ValueError):
            if destination != "default":
                routed.append(ipaddress.ip_network(destination, strict=False))
    return routed


def _ip_json(args: list[str], check: bool = True) -> list[dict[str, Any]]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=_TIMEOUT_S)
    if result.returncode != 0:
        if check:
            raise ProviderError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
        return []
    parsed = json.loads(result.stdout or "[]")
    return parsed if isinstance(parsed, list) else []


def _run(argv: list[str], stdin: str | None = None) -> str:
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProviderError(f"{' '.join(argv)} failed: {exc}") from exc
    if result.returncode != 0:
        raise ProviderError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _nft(command: str, missing_ok: bool = False) -> str:
    """One nft transaction (a script on stdin: atomic)."""
    try:
        return _run(["nft", "-f", "-"], stdin=command + "\n")
    except ProviderError as exc:
        if missing_ok and "No such file or directory" in exc.detail:
            return ""
        raise
