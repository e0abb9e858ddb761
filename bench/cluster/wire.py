"""A network cable that takes its time: frames the host sends reach the switch
DELAY_MS later, frames for the host go straight through. `tc netem` does this in the
kernel, where the kernel has it; this is the same thing in user space, between a TAP
device on the host and one on the switch.

`python -m bench.cluster.wire HOST_NETNS HOST_TAP SWITCH_NETNS SWITCH_TAP DELAY_MS`"""

import contextlib
import fcntl
import heapq
import os
import select
import struct
import sys
import time

from bench.cluster.net import join_netns

_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI = 0x0002, 0x1000


def tap_open(netns: str, name: str) -> int:
    join_netns(netns)  # a TAP device is found by name in the opener's namespace
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    return fd


def forward(host: int, switch: int, delay: float) -> None:
    pending: list[tuple[float, int, bytes]] = []
    n = 0
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else None
        readable, _, _ = select.select([host, switch], [], [], timeout)
        for fd in readable:
            try:
                frame = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if fd == host:
                n += 1
                heapq.heappush(pending, (time.monotonic() + delay, n, frame))
            else:
                _write(host, frame)
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _write(switch, heapq.heappop(pending)[2])


def _write(fd: int, frame: bytes) -> None:
    with contextlib.suppress(OSError):  # the other end is down: the frame is lost, as on a cable
        os.write(fd, frame)


if __name__ == "__main__":
    host_netns, host_tap, switch_netns, switch_tap, delay_ms = sys.argv[1:6]
    host_fd = tap_open(host_netns, host_tap)
    switch_fd = tap_open(switch_netns, switch_tap)
    forward(host_fd, switch_fd, int(delay_ms) / 1000)
