"""Traffic that is not process control but is always there: switches announcing themselves
(LLDP), address resolution, and the IT background of the zones above the controllers.
"""

from __future__ import annotations

import numpy as np

from otsight.encode import packets as pk
from otsight.sim import it_background
from otsight.sim.world import MS, S, World

BROADCAST = "ff:ff:ff:ff:ff:ff"


def build(w: World) -> None:
    _lldp(w)
    _arp(w)
    it_background.build(w)


def _lldp(w: World) -> None:
    """Every switch sends LLDP on each port every 30 s."""
    for name in w.plant.background.get("switches", []):
        dev = w.device(name)
        n_ports = 4
        for port in range(1, n_ports + 1):
            first = w.t0 + int(w.rng.integers(0, 30 * S))
            ts = np.arange(first, w.end, 30 * S, dtype=np.int64)
            src = bytes.fromhex(dev.mac.replace(":", ""))
            src = src[:5] + bytes([(src[5] + port) & 0xFF])
            frame = pk.lldp(
                dev.mac,
                f"port {port}",
                dev.name,
                port_description=f"{dev.model} port {port}",
                system_description=f"{dev.vendor} {dev.model} firmware {dev.firmware}",
                capabilities=(0x0004, 0x0004),
                src_mac=src,
            )
            w.frames(ts, [frame] * ts.shape[0])


def _arp(w: World) -> None:
    """Each host resolves the peers it talks to when it starts, then every ~20 minutes
    (cache expiry): a who-has broadcast and the reply."""
    pairs = {(p["master"], p["slave"]) for p in w.plant.polls}
    for a, b in sorted(pairs):
        da, db = w.device(a), w.device(b)
        if da.network != db.network:
            continue  # routed: the peer's address is not resolved on this segment
        first = w.t0 + int(w.rng.integers(0, 2 * S))
        ts = np.arange(first, w.end, 1200 * S, dtype=np.int64)
        ts = ts + w.rng.integers(0, 60 * S, ts.shape[0])
        req = pk.ethernet(
            BROADCAST, da.mac, pk.ETH_ARP, pk.arp(1, da.mac, da.ip, "00:00:00:00:00:00", db.ip)
        )
        rep = pk.ethernet(da.mac, db.mac, pk.ETH_ARP, pk.arp(2, db.mac, db.ip, da.mac, da.ip))
        w.frames(ts, [req] * ts.shape[0])
        w.frames(ts + int(0.3 * MS), [rep] * ts.shape[0])
