"""The attack library: what adversaries do to a plant, written as labelled traffic.

Each attack is a function registered with its ATT&CK for ICS techniques and a description
(shown by ``otsight simulate --list``). It receives the :class:`World`, the scenario's
parameters and a fresh label, and writes its packets with that label — every frame of the
attack, including handshakes and acknowledgements, carries it, which is how public labelled
ICS datasets mark attack traffic. Attacks that change the process (a write) register an
override, so the polls that follow read the new value, as they would on a real plant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from otsight.attack import check_ids
from otsight.encode import dnp3 as dnp
from otsight.encode import modbus as mb
from otsight.sim import engineering
from otsight.sim.model import AttackSpec, ModelError
from otsight.sim.world import MS, S, World

INTRUDER_MAC = "3c:52:82:6e:1f:07"


@dataclass(frozen=True)
class Attack:
    name: str
    techniques: tuple[str, ...]
    description: str
    protocols: tuple[str, ...]
    run: Callable[[World, dict, int, int], None]


LIBRARY: dict[str, Attack] = {}


def attack(name: str, techniques: tuple[str, ...], protocols: tuple[str, ...], description: str):
    check_ids(set(techniques), f"attack {name}")

    def register(fn):
        LIBRARY[name] = Attack(name, techniques, description, protocols, fn)
        return fn

    return register


def inject(w: World, spec: AttackSpec) -> None:
    a = LIBRARY.get(spec.attack)
    if a is None:
        raise ModelError(f"scenario attack {spec.name!r}: unknown attack {spec.attack!r}")
    label = w.new_attack(spec.name, a.name, a.techniques, a.description)
    a.run(w, spec.params, w.t0 + spec.at, label)


def source(w: World, params: dict) -> int:
    """The attacking host: a plant device (``from: ews-1``), or an intruder's laptop placed
    on a plant network (``intruder_ip``)."""
    if "from" in params:
        name = params["from"]
        if name not in w.plant.devices:
            raise ModelError(f"attack source {name!r} is not a device of {w.plant.name}")
        return w.host(name)
    ip = params.get("intruder_ip", "10.40.1.200")
    return w.extra_host(params.get("intruder_mac", INTRUDER_MAC), ip)


def target(w: World, params: dict, protocol: str) -> str:
    name = params.get("target")
    if name is None:
        candidates = [d.name for d in w.plant.devices.values() if protocol in d.protocols]
        candidates = [
            c for c in candidates if w.device(c).role in ("plc", "rtu", "ied", "io_device")
        ]
        if not candidates:
            raise ModelError(f"no {protocol} device in plant {w.plant.name} to attack")
        return candidates[0]
    if name not in w.plant.devices:
        raise ModelError(f"attack target {name!r} is not a device of {w.plant.name}")
    return name


def _exchanges(w: World, pairs: list[tuple[bytes, bytes | None]], gap_ms: tuple[int, int]):
    msgs, t = [], 0
    for req, resp in pairs:
        t += int(w.rng.integers(*gap_ms)) * MS
        msgs.append((t, True, req))
        if resp is not None:
            msgs.append((t + int(w.rng.integers(2, 8)) * MS, False, resp))
    return msgs


# ---- reconnaissance -----------------------------------------------------------------------


@attack(
    "network_scan",
    ("T0846", "T0840"),
    ("tcp",),
    "SYN scan of the control network for industrial service ports (502, 102, 20000, 2404, "
    "44818, 47808) from an intruder's laptop; open ports answer SYN-ACK, closed ones RST.",
)
def _network_scan(w: World, params: dict, at: int, label: int) -> None:
    import ipaddress

    from otsight.sim.wire import ACK, RST, SYN, TCP

    src = source(w, params)
    net = params.get("network", "control")
    subnet = ipaddress.IPv4Network(w.plant.networks[net]["subnet"])
    ports = params.get("ports", [502, 102, 20000, 2404, 44818, 47808, 80, 443])
    hosts = list(subnet.hosts())[: int(params.get("hosts", 64))]
    by_ip = {d.ip: d for d in w.plant.devices.values() if d.ip}
    t = at
    ts, s, d, sp, dp, fl, sq, ak = [], [], [], [], [], [], [], []
    base_port = w.ephemeral_port(src)
    for ip in hosts:
        dev = by_ip.get(str(ip))
        for port in ports:
            t += int(w.rng.integers(200_000, 1_500_000))  # 0.2–1.5 ms between probes
            if dev is None:
                continue  # no host there: the SYN goes unanswered (and is not sent to a MAC)
            dst = w.host(dev.name)
            seq = int(w.rng.integers(0, 2**32))
            ts.append(t), s.append(src), d.append(dst), sp.append(base_port), dp.append(port)
            fl.append(SYN), sq.append(seq), ak.append(0)
            open_ = any(p in dev.protocols for p in _SERVICES.get(port, ()))
            ts.append(t + 300_000), s.append(dst), d.append(src), sp.append(port)
            dp.append(base_port), sq.append(int(w.rng.integers(0, 2**32)) if open_ else 0)
            fl.append(SYN | ACK if open_ else RST | ACK), ak.append(seq + 1)
            if open_:  # the scanner resets the half-open connection
                ts.append(t + 400_000), s.append(src), d.append(dst), sp.append(base_port)
                dp.append(port), fl.append(RST), sq.append(seq + 1), ak.append(0)
    if ts:
        w.packets.add(
            ts=np.array(ts),
            kind=TCP,
            src=np.array(s),
            dst=np.array(d),
            sport=np.array(sp),
            dport=np.array(dp),
            seq=np.array(sq),
            ack=np.array(ak),
            flags=np.array(fl),
            window=1024,
            ip_id=np.arange(len(ts)) + 1000,
            ttl=64,
            label=label,
        )


_SERVICES = {
    502: ("modbus",),
    102: ("s7comm",),
    20000: ("dnp3",),
    2404: ("iec104",),
    44818: ("enip",),
    47808: ("bacnet",),
}


@attack(
    "modbus_device_id_recon",
    ("T0888",),
    ("modbus",),
    "Modbus FC 43/14 Read Device Identification (basic, regular and extended) against "
    "every Modbus PLC, as an intruder fingerprints vendor, product and firmware.",
)
def _modbus_recon(w: World, params: dict, at: int, label: int) -> None:
    src = source(w, params)
    t = at
    for dev in [d for d in w.plant.devices.values() if "modbus" in d.protocols and d.role == "plc"]:
        unit = int(dev.params.get("unit_id", 1))
        objects = {0: dev.vendor, 1: dev.model.split()[-1] if dev.model else "", 2: dev.firmware}
        pairs = [
            (
                mb.read_device_id_request(k, unit, code),
                mb.read_device_id_response(k, unit, objects, code),
            )
            for k, code in enumerate((1, 2, 3), start=1)
        ]
        t = w.session(src, w.host(dev.name), 502, t, _exchanges(w, pairs, (20, 120)), label)
        t += int(w.rng.integers(100, 900)) * MS


# ---- unauthorized commands ----------------------------------------------------------------


def _setpoint(w: World, dev_name: str, params: dict) -> dict:
    regs = [r for r in w.device(dev_name).params.get("registers", []) if "setpoint" in r]
    if not regs:
        raise ModelError(f"{dev_name} has no set-point register to attack")
    want = params.get("register")
    for r in regs:
        if want is None or r.get("name") == want or int(r["address"]) == want:
            return r
    raise ModelError(f"{dev_name} has no set-point register {want!r}")


@attack(
    "modbus_single_write",
    ("T0855", "T0836"),
    ("modbus",),
    "One unauthorized Write Single Register (FC 6) to a PLC set-point from a host that never "
    "writes, outside the normal range.",
)
def _modbus_single_write(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "modbus")
    r = _setpoint(w, dev, params)
    unit = int(w.device(dev).params.get("unit_id", 1))
    value = int(params.get("value", int(r.get("normal", [0, r["setpoint"]])[1]) * 2))
    tid = int(w.rng.integers(1, 65535))
    pairs = [
        (
            mb.write_single_register(tid, unit, int(r["address"]), value),
            mb.write_single_register(tid, unit, int(r["address"]), value),
        )
    ]
    w.session(source(w, params), w.host(dev), 502, at, _exchanges(w, pairs, (5, 20)), label)
    w.overrides[(dev, int(r["address"]))].append((at + 10 * MS, value))


@attack(
    "modbus_write_burst",
    ("T0855", "T0836", "T0831"),
    ("modbus",),
    "FrostyGoop-like burst: dozens of Write Multiple Registers (FC 16) in seconds, rewriting "
    "set-points and control registers of a PLC with values far outside their ranges.",
)
def _modbus_write_burst(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "modbus")
    unit = int(w.device(dev).params.get("unit_id", 1))
    regs = [int(r["address"]) for r in w.device(dev).params.get("registers", [])]
    n = int(params.get("writes", 40))
    pairs = []
    tid = int(w.rng.integers(1, 60000))
    for k in range(n):
        addr = int(w.rng.choice(regs)) if regs else 0
        values = [int(v) for v in w.rng.integers(0, 65535, 2)]
        pairs.append(
            (
                mb.write_multiple_registers_request(tid + k, unit, addr, values),
                mb.write_multiple_registers_response(tid + k, unit, addr, len(values)),
            )
        )
        w.overrides[(dev, addr)].append((at + k * 150 * MS, values[0]))
    w.session(source(w, params), w.host(dev), 502, at, _exchanges(w, pairs, (40, 260)), label)


@attack(
    "setpoint_in_range",
    ("T0836", "T0855"),
    ("modbus",),
    "A set-point changed to a value inside its normal range, but from a host that never "
    "writes and outside any maintenance window: unusual and dangerous, not abnormal by value.",
)
def _setpoint_in_range(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "modbus")
    r = _setpoint(w, dev, params)
    lo, hi = r.get("normal", [r["setpoint"], r["setpoint"]])
    value = int(params.get("value", hi))
    unit = int(w.device(dev).params.get("unit_id", 1))
    pairs = [
        (
            mb.write_single_register(7, unit, int(r["address"]), value),
            mb.write_single_register(7, unit, int(r["address"]), value),
        )
    ]
    w.session(source(w, params), w.host(dev), 502, at, _exchanges(w, pairs, (5, 20)), label)
    w.overrides[(dev, int(r["address"]))].append((at + 10 * MS, value))


@attack(
    "setpoint_out_of_range",
    ("T0836", "T0831"),
    ("modbus",),
    "A set-point written far outside its normal range by the HMI that usually only reads "
    "it (a compromised operator station).",
)
def _setpoint_out_of_range(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "modbus")
    r = _setpoint(w, dev, params)
    value = int(params.get("value", int(r.get("normal", [0, r["setpoint"]])[1]) * 4))
    unit = int(w.device(dev).params.get("unit_id", 1))
    hmi = params.get("from") or next(
        (p["master"] for p in w.plant.polls if p["slave"] == dev), None
    )
    src = w.host(hmi) if hmi else source(w, params)
    pairs = [
        (
            mb.write_single_register(9, unit, int(r["address"]), value),
            mb.write_single_register(9, unit, int(r["address"]), value),
        )
    ]
    w.session(src, w.host(dev), 502, at, _exchanges(w, pairs, (5, 20)), label)
    w.overrides[(dev, int(r["address"]))].append((at + 10 * MS, value))


@attack(
    "low_and_slow_writes",
    ("T0855", "T0836"),
    ("modbus",),
    "One small set-point write an hour, each in its own short connection, nudging a value "
    "towards an unsafe level (below any rate-based alarm).",
)
def _low_and_slow(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "modbus")
    r = _setpoint(w, dev, params)
    unit = int(w.device(dev).params.get("unit_id", 1))
    every = int(params.get("every_s", 3600)) * S
    value = int(r["setpoint"])
    t, k = at, 0
    while t < w.end:
        value += int(params.get("step", 5))
        pairs = [
            (
                mb.write_single_register(100 + k, unit, int(r["address"]), value),
                mb.write_single_register(100 + k, unit, int(r["address"]), value),
            )
        ]
        w.session(source(w, params), w.host(dev), 502, t, _exchanges(w, pairs, (5, 20)), label)
        w.overrides[(dev, int(r["address"]))].append((t + 10 * MS, value))
        t += every
        k += 1


@attack(
    "engineering_session_0300",
    ("T0859", "T0886", "T0845"),
    ("modbus",),
    "An engineering session from the engineering workstation at 03:00 — device "
    "identification, a full register read and a set-point write — outside every maintenance "
    "window (valid accounts, wrong time).",
)
def _engineering_night(w: World, params: dict, at: int, label: int) -> None:
    ews = params.get("from") or w.plant.engineering.get("workstation")
    dev = target(w, params, "modbus")
    engineering.modbus_session(w, ews, dev, at, label, legitimate=True)


# ---- DNP3 ---------------------------------------------------------------------------------


def _dnp3_command(w: World, params: dict, at: int, label: int, fragment: bytes, resp: bytes):
    dev = target(w, params, "dnp3")
    out_addr = int(w.device(dev).params.get("dnp3_address", 10))
    master = int(params.get("master_address", 1))
    msgs = [
        (5 * MS, True, b"".join(dnp.frames(out_addr, master, fragment))),
        (25 * MS, False, b"".join(dnp.frames(master, out_addr, resp, from_master=False))),
    ]
    w.session(source(w, params), w.host(dev), 20000, at, msgs, label)


@attack(
    "dnp3_cold_restart",
    ("T0816", "T0855"),
    ("dnp3",),
    "DNP3 Cold Restart (function 13) sent to an outstation: the RTU reboots and its points "
    "go offline.",
)
def _dnp3_cold_restart(w: World, params: dict, at: int, label: int) -> None:
    _dnp3_command(w, params, at, label, dnp.cold_restart(3), dnp.restart_response(3, 5000))


@attack(
    "dnp3_disable_unsolicited",
    ("T0815", "T0855"),
    ("dnp3",),
    "DNP3 Disable Unsolicited Responses (function 21) for classes 1–3: the outstation stops "
    "reporting events (denial of view).",
)
def _dnp3_disable_unsolicited(w: World, params: dict, at: int, label: int) -> None:
    _dnp3_command(w, params, at, label, dnp.disable_unsolicited(4), dnp.response(4, 0))


@attack(
    "dnp3_firmware_transfer",
    ("T0857", "T0843"),
    ("dnp3",),
    "A file written to an outstation over DNP3 file transfer (group 70 open for writing and "
    "file transport blocks): a firmware image pushed to an RTU.",
)
def _dnp3_firmware(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "dnp3")
    out_addr = int(w.device(dev).params.get("dnp3_address", 10))
    master = 1
    name = params.get("file", "/firmware/rtu_fw_9.9.bin")
    size = int(params.get("size", 4096))
    frags = [(dnp.file_open(0, name, mode=2, file_size=size), dnp.response(0, 0))]
    block = bytes(w.rng.integers(0, 256, 200, dtype=np.uint8))
    blocks = max(1, size // len(block))
    for b in range(blocks):
        obj = dnp.file_transport(0x1234, b, block, last=b == blocks - 1)
        frags.append((dnp.request((b + 1) & 15, dnp.FC_WRITE, obj), dnp.response((b + 1) & 15, 0)))
    msgs, t = [], 0
    for k, (req, resp) in enumerate(frags):
        t += int(w.rng.integers(30, 80)) * MS
        msgs.append((t, True, b"".join(dnp.frames(out_addr, master, req, transport_seq=k))))
        msgs.append(
            (
                t + 20 * MS,
                False,
                b"".join(dnp.frames(master, out_addr, resp, from_master=False, transport_seq=k)),
            )
        )
    w.session(source(w, params), w.host(dev), 20000, at, msgs, label)


def catalogue() -> list[dict]:
    """The attack library as data (for --list and the documentation)."""
    return [
        {
            "name": a.name,
            "techniques": list(a.techniques),
            "protocols": list(a.protocols),
            "description": a.description,
        }
        for a in LIBRARY.values()
    ]


# ---- IT into OT ---------------------------------------------------------------------------


@attack(
    "smb_copy_to_ews",
    ("T0867",),
    ("smb",),
    "A tool copied over SMB from an enterprise host onto the engineering workstation's admin "
    "share (lateral tool transfer into the control zone).",
)
def _smb_copy_to_ews(w: World, params: dict, at: int, label: int) -> None:
    from otsight.sim import it_background

    ews = params.get("target") or w.plant.engineering.get("workstation")
    src = params.get("from") or next(
        (d.name for d in w.plant.devices.values() if d.role == "workstation"), None
    )
    if not ews or not src:
        raise ModelError("smb_copy_to_ews needs an engineering workstation and a source host")
    it_background.smb_copy(
        w,
        src,
        ews,
        "C$",
        params.get("file", "Windows\\Temp\\svc_update.exe"),
        int(params.get("size", 180_000)),
        at,
        label,
        write=True,
        user="svc_backup",
    )


@attack(
    "rdp_it_to_control",
    ("T0886", "T0822"),
    ("rdp",),
    "An RDP session from an enterprise workstation straight into a host of the control zone "
    "(remote services crossing the IT/OT boundary).",
)
def _rdp_it_to_control(w: World, params: dict, at: int, label: int) -> None:
    from otsight.sim import it_background

    dst = params.get("target") or w.plant.engineering.get("workstation")
    src = params.get("from") or next(
        (d.name for d in w.plant.devices.values() if d.role == "workstation"), None
    )
    if not dst or not src:
        raise ModelError("rdp_it_to_control needs a source workstation and a control-zone target")
    it_background.rdp_session(w, src, dst, at, label, params.get("user", "jdoe"))
