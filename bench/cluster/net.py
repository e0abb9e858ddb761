"""The cluster's network: one Linux network namespace per host, each with a veth link
to a bridge that lives in a namespace of its own, on 198.18.0.0/24 (RFC 2544's
benchmarking range). Nothing is added to the machine's own namespace, so only the hosts
made here can be reached, and deleting the namespaces takes every link with them."""

import contextlib
import ctypes
import json
import os
import subprocess
import sys
from dataclasses import dataclass

PREFIX = "msgcl-"
SWITCH = f"{PREFIX}net"
SUBNET = "198.18.0"
_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Host:
    name: str
    address: str

    @property
    def netns(self) -> str:
        return PREFIX + self.name

    def exec(self, command: list[str]) -> list[str]:
        """`command` run on this host (in its namespace)."""
        return ["ip", "netns", "exec", self.netns, *command]


HOSTS = {
    name: Host(name, f"{SUBNET}.{octet}")
    for name, octet in (
        ("client", 1),
        ("lb", 2),
        ("web1", 11),
        ("web2", 12),
        ("worker1", 21),
        ("worker2", 22),
        ("beat", 31),
        ("sandbox", 41),
        ("db", 51),
    )
}


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def ours() -> list[str]:
    """Namespaces of this script still on the machine (a run killed outright)."""
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def network_create(*, slow: str) -> None:
    """Every host on the switch; `slow` also gets a second, slow cable (`slow0`, a TAP
    device with eth0's MAC, joined to the switch by bench/cluster/wire.py), unused until
    link_delay moves the host onto it."""
    network_delete()
    ip("netns", "add", SWITCH)
    ip("-n", SWITCH, "link", "add", "br0", "type", "bridge")
    ip("-n", SWITCH, "link", "set", "br0", "up")
    for host in HOSTS.values():
        ip("netns", "add", host.netns)
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("-n", SWITCH, "link", "add", f"v-{host.name}", "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        ip("-n", SWITCH, "link", "set", f"v-{host.name}", "master", "br0", "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0", "metric", "100")
        ip("-n", host.netns, "link", "set", "eth0", "up")
    host = HOSTS[slow]
    mac = json.loads(ip("-n", host.netns, "-j", "link", "show", "eth0").stdout)[0]["address"]
    ip("-n", host.netns, "tuntap", "add", "dev", "slow0", "mode", "tap")
    ip("-n", host.netns, "link", "set", "slow0", "address", mac)
    ip("-n", SWITCH, "tuntap", "add", "dev", f"s-{host.name}", "mode", "tap")
    ip("-n", SWITCH, "link", "set", f"s-{host.name}", "master", "br0", "up")


def network_delete() -> None:
    for name in ours():
        ip("netns", "del", name, check=False)


def host_pids(host: Host) -> list[int]:
    """Processes on the host, but never this one (its thread that joined `client`)."""
    out = ip("netns", "pids", host.netns, check=False).stdout
    return [int(pid) for pid in out.split() if int(pid) != os.getpid()]


def host_kill(host: Host) -> list[int]:
    """kill -9 every process of a host, as if its machine lost power."""
    pids = host_pids(host)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    return pids


def link_set(host: Host, state: str) -> None:
    """Its cable, pulled (down) or plugged back (up)."""
    ip("-n", host.netns, "link", "set", "eth0", state)


def wire_command(host: Host, milliseconds: int) -> list[str]:
    """The process that carries the slow cable's frames (bench/cluster/wire.py)."""
    ends = [host.netns, "slow0", SWITCH, f"s-{host.name}"]
    return [sys.executable, "-m", "bench.cluster.wire", *ends, str(milliseconds)]


def link_delay(host: Host, on: bool) -> None:
    """Move the host onto its slow cable (each round trip to it then takes the wire's
    delay longer) or back. Same address, same MAC: connections carry on, only slower.
    (`tc qdisc ... netem delay` is the kernel's way; this kernel has no sch_netem.)"""
    cidr = f"{host.address}/24"
    if on:
        ip("-n", host.netns, "addr", "add", cidr, "dev", "slow0", "metric", "10")
        ip("-n", host.netns, "link", "set", "slow0", "up")
        ip("-n", host.netns, "link", "set", "eth0", "down")
    else:
        ip("-n", host.netns, "link", "set", "eth0", "up")
        ip("-n", host.netns, "link", "set", "slow0", "down")
        ip("-n", host.netns, "addr", "del", cidr, "dev", "slow0", check=False)


def join(host: Host) -> None:
    """Move this thread (and the processes it starts from now on) into a host's network,
    as a client machine of the cluster."""
    join_netns(host.netns)


def join_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{name}") as f:
        if libc.setns(f.fileno(), _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
