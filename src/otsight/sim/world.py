"""The simulation's shared state: clock, hosts, payloads, packets, process signals, labels.

Everything that generates traffic (polls, engineering sessions, IT background, attacks)
writes through a :class:`World`, so addresses, ephemeral ports, labels and register
overrides (a write that changes what later polls read) stay consistent across them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from otsight.sim import tcp
from otsight.sim.model import Device, Plant
from otsight.sim.physics import Signals, simulate_processes
from otsight.sim.wire import RAW, HostTable, Packets, PayloadBuffer

S = 1_000_000_000
MS = 1_000_000


@dataclass
class AttackRecord:
    """One injected attack instance, as the labels describe it."""

    label: int
    name: str
    attack: str
    techniques: tuple[str, ...]
    description: str
    start: int = 0  # ns; filled from the frames written
    end: int = 0


@dataclass
class World:
    plant: Plant
    t0: int
    duration: int
    rng: np.random.Generator
    hosts: HostTable = field(default_factory=HostTable)
    payload: PayloadBuffer = field(default_factory=PayloadBuffer)
    packets: Packets = field(default_factory=Packets)
    attacks: list[AttackRecord] = field(default_factory=list)
    # (device, register address) → [(from ns, value)]: writes that later polls must read
    overrides: dict[tuple[str, int], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (master, outstation) → frames an adversary in the middle slips into that cyclic
    # connection: (ns, from master, payload, label, sending host or -1); the connection's
    # builder numbers them with its own traffic (IEC 104: the payload is an I-frame)
    injected: dict[tuple[str, str], list[tuple[int, bool, bytes, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _ports: dict[int, int] = field(default_factory=dict)
    signals: Signals | None = None
    host_of: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, plant: Plant, duration: int, seed: int) -> World:
        rng = np.random.default_rng(seed)
        start = dt.datetime.fromisoformat(plant.start.replace("Z", "+00:00"))
        t0 = int(start.timestamp()) * S
        w = cls(plant=plant, t0=t0, duration=duration, rng=rng)
        w.signals = simulate_processes(plant.processes, t0, duration, rng)
        for d in plant.devices.values():
            w.host_of[d.name] = w.hosts.add(d.mac, d.ip)
        return w

    @property
    def end(self) -> int:
        return self.t0 + self.duration

    def device(self, name: str) -> Device:
        return self.plant.devices[name]

    def host(self, name: str) -> int:
        return self.host_of[name]

    def extra_host(self, mac: str, ip: str | None) -> int:
        """A host that is not part of the plant (an intruder, or a spoofed sender)."""
        return self.hosts.add(mac, ip)

    def ephemeral_port(self, host: int) -> int:
        p = self._ports.get(host)
        if p is None:
            p = 49152 + int(self.rng.integers(0, 8000))
        self._ports[host] = p + 1 if p < 65535 else 49152
        return p

    def new_attack(
        self, name: str, attack: str, techniques: tuple[str, ...], description: str
    ) -> int:
        label = len(self.attacks) + 1
        self.attacks.append(AttackRecord(label, name, attack, techniques, description))
        return label

    # -- writing traffic ---------------------------------------------------------------------
    def session(
        self,
        client: int,
        server: int,
        server_port: int,
        start: int,
        messages: list[tuple[int, bool, bytes]],
        label: int = 0,
        close: bool = True,
        client_port: int | None = None,
    ) -> int:
        """A whole TCP session: handshake at ``start``, then ``messages`` as (ns after
        start, from client, payload), then a close. Returns the time of the last packet."""
        if client_port is None:
            client_port = self.ephemeral_port(client)
        rtt = 2 * MS
        ts = np.array([start + rtt + m[0] for m in messages], np.int64)
        fc = np.array([m[1] for m in messages], bool)
        off, ln = self.payload.add_many([m[2] for m in messages])
        end = int(ts.max()) + 50 * MS if messages else start + 10 * MS
        tcp.conversation(
            self.packets,
            tcp.Endpoints(client, server, client_port, server_port),
            ts,
            fc,
            off,
            ln,
            label,
            self.rng,
            open_at=start,
            close_at=end if close else None,
            handshake_label=label,
        )
        return end + MS

    def datagrams(
        self,
        src: int,
        dst: int,
        sport: int,
        dport: int,
        ts: np.ndarray,
        payloads: list[bytes],
        label: int = 0,
    ) -> None:
        off, ln = self.payload.add_many(payloads)
        tcp.udp(self.packets, src, dst, sport, dport, np.asarray(ts, np.int64), off, ln, label)

    def frames(self, ts: np.ndarray, frames: list[bytes], label: int = 0) -> None:
        """Whole link-layer frames (non-IP protocols)."""
        off, ln = self.payload.add_many(frames)
        self.packets.add(
            ts=np.asarray(ts, np.int64), kind=RAW, pay_off=off, pay_len=ln, label=label
        )

    def register_value(self, device: str, address: int, ts: np.ndarray) -> np.ndarray:
        """What a poll at ``ts`` reads from a Modbus register (process signal, setpoint,
        then any write that changed it)."""
        dev = self.device(device)
        out = np.zeros(ts.shape[0], np.int64)
        for r in dev.params.get("registers", []):
            if int(r["address"]) != address:
                continue
            if "signal" in r:
                assert self.signals is not None
                out = np.rint(self.signals.sample(r["signal"], ts) * float(r.get("scale", 1)))
                out = out.astype(np.int64)
            else:
                out[:] = int(r.get("setpoint", 0))
        for t_from, value in sorted(self.overrides.get((device, address), [])):
            out[ts >= t_from] = value
        return out & 0xFFFF
