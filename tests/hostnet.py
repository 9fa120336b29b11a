"""Subnets that are safe to use: none of the real host's routes or addresses.

scripts/isolated records the host's `ip -j addr` and routes before it unshares
the network namespace (inside, they cannot be seen); tests and benchmarks pick
their subnets against that record.
"""

import ipaddress
import json
import os
from pathlib import Path


def host_networks():
    """Networks the real host uses (recorded by scripts/isolated before unsharing)."""
    found = []
    snapshot = os.environ.get("BALEINE_TEST_HOSTNET")
    if not snapshot:
        raise RuntimeError("no record of the host's networks: run inside scripts/isolated (make test)")
    decoder = json.JSONDecoder()
    text, index = Path(snapshot).read_text(), 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        chunk, index = decoder.raw_decode(text, index)
        for item in chunk:
            for info in item.get("addr_info", []):
                found.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network)
            if item.get("dst") not in (None, "default"):
                found.append(ipaddress.ip_network(item["dst"], strict=False))
    return found


_taken_subnets = set()


def free_subnet(prefix=24):
    """A 10.x subnet that overlaps nothing on the real host nor an earlier test's."""
    used = host_networks()
    for second in range(200, 255):
        for third in range(0, 256, 1 << (24 - prefix) if prefix <= 24 else 1):
            candidate = ipaddress.ip_network(f"10.{second}.{third}.0/{prefix}")
            if any(candidate.overlaps(n) for n in [*_taken_subnets, *used] if n.version == 4):
                continue
            _taken_subnets.add(candidate)
            return str(candidate)
    raise RuntimeError("no free 10.x subnet for the tests")
