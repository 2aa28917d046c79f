"""The attack library: what adversaries do to a plant, written as labelled traffic.

Each attack is a function registered with its ATT&CK for ICS techniques and a description
(shown by ``otsight simulate --list``). It receives the :class:`World`, the scenario's
parameters and a fresh label, and writes its packets with that label — every frame of the
attack, including handshakes and acknowledgements, carries it, which is how public labelled
ICS datasets mark attack traffic. Attacks that change the process (a write) register an
override, so the polls that follow read the new value, as they would on a real plant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from otsight.attack import check_ids
from otsight.encode import dnp3 as dnp
from otsight.encode import enip as en
from otsight.encode import iec104 as i104
from otsight.encode import modbus as mb
from otsight.encode import packets as pk
from otsight.encode import profinet_dcp as pn
from otsight.encode import s7comm as s7
from otsight.sim import engineering, it_background, polling, tcp
from otsight.sim import iec104 as iec
from otsight.sim.model import AttackSpec, ModelError, parse_duration
from otsight.sim.wire import ACK, RST, SYN, TCP
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
    dst = params.get("target") or w.plant.engineering.get("workstation")
    src = params.get("from") or next(
        (d.name for d in w.plant.devices.values() if d.role == "workstation"), None
    )
    if not dst or not src:
        raise ModelError("rdp_it_to_control needs a source workstation and a control-zone target")
    it_background.rdp_session(w, src, dst, at, label, params.get("user", "jdoe"))


# ---- discrete manufacturing: S7comm, PROFINET DCP, EtherNet/IP -------------------------------


def _intruder(w: World, params: dict, near: str) -> int:
    """The attacking host: ``from`` a plant device, or an intruder's laptop plugged into the
    network of device ``near`` (address .200 there unless ``intruder_ip`` says otherwise)."""
    if "from" in params or "intruder_ip" in params:
        return source(w, params)
    net = ipaddress.IPv4Network(w.plant.networks[w.device(near).network]["subnet"])
    return source(w, {**params, "intruder_ip": str(net.network_address + 200)})


def _devices(w: World, protocol: str, roles: tuple[str, ...] = ("plc",)) -> list[str]:
    return [d.name for d in w.plant.devices.values() if protocol in d.protocols and d.role in roles]


def _pn_frame(dst: str | bytes, src: str | bytes, payload: bytes) -> bytes:
    return pk.ethernet(dst, src, pn.ETH_PROFINET, payload)


@attack(
    "s7_szl_recon",
    ("T0888",),
    ("s7comm",),
    "Fingerprinting of every S7 PLC (as plcscan / nmap s7-info do): COTP connection to the "
    "CPU's rack and slot, Setup Communication, then Read SZL 0x0011 (module identification: "
    "order number, firmware) and 0x001C (component identification: names, serial number).",
)
def _s7_szl_recon(w: World, params: dict, at: int, label: int) -> None:
    plcs = [params["target"]] if "target" in params else _devices(w, "s7comm")
    if not plcs:
        raise ModelError(f"no S7 PLC in plant {w.plant.name}")
    src = _intruder(w, params, plcs[0])
    t = at
    for plc in plcs:
        sc = engineering.S7Script(w, plc)
        sc.connect(s7.CONN_PG)
        sc.identify(think_ms=int(w.rng.integers(5, 40)))
        t = w.session(src, w.host(plc), 102, t, sc.msgs, label)
        t += int(w.rng.integers(200, 1500)) * MS


@attack(
    "s7_plc_stop",
    ("T0858", "T0881"),
    ("s7comm",),
    "PLC Stop (S7 function 0x29, PI service P_PROGRAM) sent to an S7 CPU from a host that never "
    "programs it: the CPU goes to STOP, its outputs drop and its PROFINET IO frames report "
    "ProviderState STOP (Change Operating Mode; the control service is stopped).",
)
def _s7_plc_stop(w: World, params: dict, at: int, label: int) -> None:
    plc = target(w, params, "s7comm")
    sc = engineering.S7Script(w, plc)
    sc.connect(s7.CONN_PG)
    ref = sc.next_ref()
    sc.job(int(w.rng.integers(50, 300)), s7.plc_stop_request(ref), s7.plc_stop_response(ref))
    w.session(_intruder(w, params, plc), w.host(plc), 102, at, sc.msgs, label)
    w.overrides[(plc, polling.CPU_STOP)].append((at + 2 * MS + sc.t, 0))


@attack(
    "s7_program_download",
    ("T0843", "T0821"),
    ("s7comm",),
    "Program download to an S7 CPU from an intruder's engineering software: Request download, "
    "the PLC pulling the blocks (Download block / Download ended), then PI _INSE activating "
    "them — a modified OB1 (cycle task) and a new FC (Program Download, Modify Controller "
    "Tasking).",
)
def _s7_program_download(w: World, params: dict, at: int, label: int) -> None:
    plc = target(w, params, "s7comm")
    sc = engineering.S7Script(w, plc)
    sc.connect(s7.CONN_PG)
    sc.identify(think_ms=30)
    blocks = params.get("blocks", [["OB", 1], ["FC", 666]])
    for kind, number in blocks:
        sc.download(str(kind).upper(), int(number), int(w.rng.integers(400, 1600)))
    w.session(_intruder(w, params, plc), w.host(plc), 102, at, sc.msgs, label)


@attack(
    "enip_list_identity_recon",
    ("T0846", "T0888"),
    ("enip",),
    "EtherNet/IP discovery: a ListIdentity broadcast on UDP 44818 answered by every CIP device "
    "(vendor, product, revision, serial, name), then ListIdentity over TCP to each responder.",
)
def _enip_list_identity_recon(w: World, params: dict, at: int, label: int) -> None:
    devices = [
        d
        for d in _devices(w, "enip", ("plc", "io_device"))
        if "enip_identity" in w.device(d).params
    ]
    if not devices:
        raise ModelError(f"no EtherNet/IP device in plant {w.plant.name}")
    src = _intruder(w, params, devices[0])
    bcast = w.extra_host("ff:ff:ff:ff:ff:ff", "255.255.255.255")
    sport = w.ephemeral_port(src)
    # a ListIdentity sender context starts with the longest delay the answers may take (ms)
    ctx = int(w.rng.integers(1, 2**32)) << 16 | 500
    answers = {d: _list_identity(w, d, ctx) for d in devices}
    w.datagrams(
        src, bcast, sport, en.ENIP_PORT, np.array([at]), [en.list_identity_request(ctx)], label
    )
    for d, answer in answers.items():
        t = at + int(w.rng.integers(1, 40)) * MS
        off, ln = w.payload.add_many([answer])
        tcp.udp(w.packets, w.host(d), src, en.ENIP_PORT, sport, np.array([t]), off, ln, label)
    t = at + 2 * S
    for d in devices:
        msgs = [(5 * MS, True, en.list_identity_request(ctx)), (8 * MS, False, answers[d])]
        t = w.session(src, w.host(d), en.ENIP_PORT, t, msgs, label)
        t += int(w.rng.integers(100, 600)) * MS


def _list_identity(w: World, device: str, context: int) -> bytes:
    dev = w.device(device)
    ident = dev.params["enip_identity"]
    rev = [int(x) for x in re.findall(r"\d+", dev.firmware)[:2]] + [1, 1]
    return en.list_identity_response(
        int(ident.get("vendor_id", 1)),
        int(ident.get("device_type", en.DEVICE_TYPE_PLC)),
        int(ident.get("product_code", 1)),
        (rev[0], rev[1]),
        int(dev.serial or "0", 16),
        str(ident.get("product_name", dev.model)),
        dev.ip or "0.0.0.0",
        context=context,
    )


@attack(
    "enip_unauthorized_write",
    ("T0855", "T0836"),
    ("enip",),
    "CIP Write Tag (0x4D) of a Logix controller tag from a host that only ever should read "
    "(or never talks to it): RegisterSession, Unconnected Send carrying the write, "
    "UnRegisterSession; the new value is what the HMI reads afterwards.",
)
def _enip_unauthorized_write(w: World, params: dict, at: int, label: int) -> None:
    plc = target(w, params, "enip")
    dev = w.device(plc)
    tags = dev.params.get("tags", [])
    want = params.get("tag")
    index = next(
        (i for i, t in enumerate(tags) if (want is None and "setpoint" in t) or t["name"] == want),
        None,
    )
    if index is None:
        raise ModelError(f"{plc} has no tag {want!r} to write")
    tag = tags[index]
    dtype, fmt = polling.LOGIX_TYPES[str(tag.get("type", "REAL")).upper()]
    high = float(tag.get("normal", [0, tag.get("setpoint", 100)])[1])
    value = float(params.get("value", high * 2.5))
    raw = np.array([value]).astype(fmt).tobytes()
    route = dev.params.get("route")
    message = en.write_tag_request(tag["name"], dtype, raw)
    if route:
        message = en.unconnected_send(message, en.port_segment(int(route[0]), int(route[1])))
    session = int(w.rng.integers(0x1000, 0x7FFFFFFF))
    msgs = [
        (5 * MS, True, en.register_session_request()),
        (8 * MS, False, en.register_session_response(session)),
        (60 * MS, True, en.send_rr_data(session, message, context=2)),
        (64 * MS, False, en.send_rr_data(session, en.write_tag_response(), context=2)),
        (120 * MS, True, en.unregister_session(session)),
    ]
    w.session(_intruder(w, params, plc), w.host(plc), en.ENIP_PORT, at, msgs, label)
    polling.write_tag(w, plc, index, at + 70 * MS, value)


@attack(
    "dcp_identify_recon",
    ("T0846",),
    ("profinet",),
    "PROFINET DCP Identify All (multicast 01:0e:cf:00:00:00) from an intruder's laptop: every "
    "IO controller and IO device answers with its name of station, type, vendor/device id, "
    "role and IP parameters.",
)
def _dcp_identify_recon(w: World, params: dict, at: int, label: int) -> None:
    stations = _devices(w, "profinet", ("plc", "io_device"))
    if not stations:
        raise ModelError(f"no PROFINET station in plant {w.plant.name}")
    src = _intruder(w, params, stations[0])
    mac = w.hosts.mac(src)
    ts, frames = [], []
    for k in range(int(params.get("rounds", 2))):
        t = at + k * 3 * S
        xid = int(w.rng.integers(1, 2**31))
        ts.append(t)
        frames.append(
            _pn_frame(pn.MULTICAST_IDENTIFY, mac, pn.identify_request(xid, response_delay=0x80))
        )
        for s in stations:
            ts.append(t + int(w.rng.integers(1, 1200)) * MS // 10)
            frames.append(_pn_frame(mac, w.device(s).mac, polling.dcp_identity(w, s, xid)))
    w.frames(np.array(ts), frames, label)


def _dcp_set(w: World, params: dict, at: int, label: int, request, answered) -> None:
    """A DCP Set from the intruder to an IO device (the first one unless ``target``), the
    device's positive answer, and the loss of its AR with the controller."""
    dev = params.get("target") or _devices(w, "profinet", ("io_device",))[0]
    if dev not in w.plant.devices:
        raise ModelError(f"attack target {dev!r} is not a device of {w.plant.name}")
    src = _intruder(w, params, dev)
    mac, dmac = w.hosts.mac(src), w.device(dev).mac
    xid = int(w.rng.integers(1, 2**31))
    frames = [
        _pn_frame(dmac, mac, request(xid)),
        _pn_frame(mac, dmac, pn.set_response(xid, answered)),
    ]
    reply = at + int(w.rng.integers(1, 6)) * MS
    w.frames(np.array([at, reply]), frames, label)
    w.overrides[(dev, polling.AR_LOST)].append((reply, 0))


@attack(
    "dcp_set_station_name",
    ("T0855", "T0836"),
    ("profinet",),
    "PROFINET DCP Set NameOfStation (permanent) on an IO device in data exchange: the device "
    "takes the new name, its IO controller loses it (the cyclic frames stop) and keeps "
    "searching for the old name.",
)
def _dcp_set_station_name(w: World, params: dict, at: int, label: int) -> None:
    name = str(params.get("name", "x-owned"))
    _dcp_set(w, params, at, label,
             lambda xid: pn.set_name_of_station(xid, name, pn.QUALIFIER_PERMANENT),
             [(pn.OPT_DEVICE, pn.SUB_NAME_OF_STATION)])  # fmt: skip


@attack(
    "dcp_factory_reset",
    ("T0816", "T0855"),
    ("profinet",),
    "PROFINET DCP Set Reset to Factory (all stored data) on an IO device: it drops its name "
    "and IP parameters and restarts; its AR with the controller breaks and the cyclic frames "
    "stop.",
)
def _dcp_factory_reset(w: World, params: dict, at: int, label: int) -> None:
    mode = int(params.get("mode", pn.RESET_ALL_STORED_DATA))
    _dcp_set(w, params, at, label,
             lambda xid: pn.factory_reset_request(xid, mode),
             [(pn.OPT_CONTROL, pn.SUB_RESET_TO_FACTORY)])  # fmt: skip


# ---- electrical substations: IEC 60870-5-104 ----------------------------------------------


def _near(w: World, params: dict, device: str) -> int:
    """The attacking host: ``from`` a plant device, ``intruder_ip``, or a laptop at .200 on
    the network of ``device``."""
    if "from" in params or "intruder_ip" in params:
        return source(w, params)
    net = ipaddress.IPv4Network(w.plant.networks[w.device(device).network]["subnet"])
    return source(w, {**params, "intruder_ip": str(net.network_address + 200)})


def _start_link(w: World, at: int, latency_ms: float, label: int) -> tuple[iec.Link, int]:
    """An intruder's link: STARTDT act right after the handshake, the outstation's con."""
    link = iec.Link()
    up = at + 3 * MS
    ready = up + int(w.rng.lognormal(np.log(latency_ms), 0.3) * MS)
    link.one(up, True, i104.startdt(), label)
    link.one(ready, False, i104.startdt(con=True), label)
    return link, ready


def _lat(w: World, latency_ms: float) -> int:
    return int(w.rng.lognormal(np.log(latency_ms), 0.3) * MS)


@attack(
    "iec104_command_storm",
    ("T0855", "T0806", "T0831", "T0813"),
    ("iec104",),
    "Industroyer-like: from a host that is not the SCADA master, STARTDT, then select and "
    "execute commands in quick succession over every switching device of a station — double "
    "commands (C_DC_NA_1) opening its breakers, single-command probes (C_SC_NA_1) on the other "
    "IOAs, refused with COT 47. The gateway passes the commands to the bays, confirms and "
    "terminates each; its masters then see the breakers open and the feeders go dead.",
)
def _iec104_command_storm(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "iec104")
    ca = iec.common_address(w.plant, dev)
    lat = float(w.device(dev).params.get("latency_ms", 5.0))
    ioas = [p for p in iec.points(w.plant, dev) if p.kind == "double"]
    known = {p.ioa for p in ioas}
    probes = [int(i) for i in params.get("ioas", []) if int(i) not in known]
    bays = {(p["master"], p["slave"]) for p in w.plant.polls if p["protocol"] == "iec104"}
    link, t = _start_link(w, at, lat, label)
    t += int(w.rng.integers(150, 400)) * MS
    for p in [*ioas, *(iec.Point(ioa=i, kind="single") for i in probes)]:
        t += int(w.rng.integers(15, 60)) * MS
        if not p.command:
            link.one(
                t, True, i104.i_frame(0, 0, i104.c_sc_na_1(ca, p.ioa, False, select=True)), label
            )
            t += _lat(w, lat)
            refused = i104.c_sc_na_1(
                ca, p.ioa, False, True, cot=i104.COT_UNKNOWN_IOA, negative=True
            )
            link.one(t, False, i104.i_frame(0, 0, refused), label)
            continue
        steps = []  # (select, sent at, confirmed at)
        for select in (True, False):
            cmd = i104.c_dc_na_1(ca, p.ioa, i104.DP_OFF, select)
            con = i104.c_dc_na_1(ca, p.ioa, i104.DP_OFF, select, cot=i104.COT_ACTIVATION_CON)
            sent = t
            t += _lat(w, lat) + (_lat(w, 25.0) if p.device != dev else 0)
            link.one(sent, True, i104.i_frame(0, 0, cmd), label)
            link.one(t, False, i104.i_frame(0, 0, con), label)
            steps.append((select, sent, t))
            t += int(w.rng.integers(5, 20)) * MS
        opened = t + int(w.rng.integers(40, 80)) * MS  # breaker operating time
        w.overrides[(dev, p.ioa)].append((opened, 0))
        t = opened + _lat(w, lat) + (_lat(w, 25.0) if p.device != dev else 0)
        state = i104.m_dp_tb_1(ca, [(p.ioa, i104.DP_OFF, opened // MS)], cot=iec.COT_RETURN_REMOTE)
        link.one(t, False, i104.i_frame(0, 0, state), label)
        t += int(w.rng.integers(1, 4)) * MS
        term = i104.c_dc_na_1(ca, p.ioa, i104.DP_OFF, cot=i104.COT_ACTIVATION_TERMINATION)
        link.one(t, False, i104.i_frame(0, 0, term), label)
        if p.device != dev and (dev, p.device) in bays:  # the gateway commands the bay
            _forward_command(w, dev, p, steps, opened, label)
    iec.session(w, _near(w, params, dev), dev, at, link, at, label)


def _forward_command(
    w: World, gateway: str, p: iec.Point, steps: list, opened: int, label: int
) -> None:
    """The select and execute a gateway passes to the bay controller of point ``p``, and the
    bay's confirmations, slipped into the gateway's own link to the bay."""
    ca = iec.common_address(w.plant, p.device)
    lat = float(w.device(p.device).params.get("latency_ms", 4.0))
    into = w.injected[(gateway, p.device)]
    for select, sent, _ in steps:
        t = sent + _lat(w, 3.0)
        cmd = i104.c_dc_na_1(ca, p.local_ioa, i104.DP_OFF, select)
        con = i104.c_dc_na_1(ca, p.local_ioa, i104.DP_OFF, select, cot=i104.COT_ACTIVATION_CON)
        into.append((t, True, i104.i_frame(0, 0, cmd), label, -1))
        into.append((t + _lat(w, lat), False, i104.i_frame(0, 0, con), label, -1))
    term = i104.c_dc_na_1(ca, p.local_ioa, i104.DP_OFF, cot=i104.COT_ACTIVATION_TERMINATION)
    into.append((opened + _lat(w, lat) + 2 * MS, False, i104.i_frame(0, 0, term), label, -1))


@attack(
    "iec104_spoofed_reporting",
    ("T0856", "T0830"),
    ("iec104",),
    "Adversary in the middle between the SCADA master and a station: gratuitous ARP replies "
    "bind the station's IP address to the attacker's MAC, then frames with the station's IP "
    "and the attacker's MAC slip into the live 104 connection — measured values replayed "
    "from before the attack and every breaker reported closed — while the real reports go on.",
)
def _iec104_spoofed_reporting(w: World, params: dict, at: int, label: int) -> None:
    dev = target(w, params, "iec104")
    master = params.get("master") or next(
        (
            p["master"]
            for p in w.plant.polls
            if p["slave"] == dev
            and p["protocol"] == "iec104"
            and w.device(p["master"]).role == "scada"
        ),
        None,
    )
    if master is None or not any(
        p["master"] == master and p["slave"] == dev for p in w.plant.polls
    ):
        raise ModelError(
            f"iec104_spoofed_reporting: no 104 connection from a SCADA master to {dev}"
        )
    mac = params.get("attacker_mac", INTRUDER_MAC)
    ip = w.device(dev).ip
    if ip is None:
        raise ModelError(f"iec104_spoofed_reporting: {dev} has no IP address to spoof")
    spoof = w.extra_host(mac, ip)
    stop = min(at + parse_duration(params.get("duration", "5m"), "duration"), w.end)
    every = parse_duration(params.get("every", "2s"), "every")
    record = parse_duration(params.get("record", "2m"), "record")
    # the ARP poisoning keeps the binding fresh every 10 s
    arp = pk.ethernet(
        "ff:ff:ff:ff:ff:ff",
        mac,
        pk.ETH_ARP,
        pk.arp(2, mac, ip, "ff:ff:ff:ff:ff:ff", ip),
    )
    ts = np.arange(at, stop, 10 * S, dtype=np.int64)
    w.frames(ts, [arp] * ts.shape[0], label)
    ts = np.arange(at + every, stop, every, dtype=np.int64)
    ts += w.rng.integers(0, 200 * MS, ts.shape[0])
    if not ts.shape[0]:
        return
    ca = iec.common_address(w.plant, dev)
    pts = iec.points(w.plant, dev)
    replayed = np.maximum(at - record + (ts - at) % record, w.t0)  # the recorded values, looped
    ov = iec.overrides(w)
    into = w.injected[(master, dev)]
    floats = [p for p in pts if p.kind == "float"]
    size = iec.per_asdu("float")
    for k in range(0, len(floats), size):
        chunk = floats[k : k + size]
        vals = np.stack([iec.values(w, p, replayed, ov) for p in chunk], axis=1)
        rows = iec.report_rows("float", ca, [p.ioa for p in chunk], vals, i104.COT_PERIODIC)
        into += [
            (int(t) + k * MS, False, bytes(r), label, spoof) for t, r in zip(ts, rows, strict=True)
        ]
    closed = [(p.ioa, i104.DP_ON) for p in pts if p.kind == "double" and p.command]
    if closed:
        frame = i104.i_frame(0, 0, i104.m_dp_na_1(ca, closed, cot=i104.COT_SPONTANEOUS))
        into += [(int(t) + 5 * MS, False, frame, label, spoof) for t in ts[::5]]


@attack(
    "iec104_interrogation_recon",
    ("T0846", "T0861", "T0888"),
    ("iec104",),
    "Point discovery on every IEC 104 outstation: an intruder connects, STARTDT, probes common "
    "addresses with station interrogations (the wrong ones refused with COT 46), then "
    "interrogates with the broadcast address 65535 and reads back the whole point table.",
)
def _iec104_interrogation_recon(w: World, params: dict, at: int, label: int) -> None:
    targets = params.get("targets") or [
        d.name
        for d in w.plant.devices.values()
        if "iec104" in d.protocols and d.role in ("rtu", "ied")
    ]
    t = at
    for dev in targets:
        ca = iec.common_address(w.plant, dev)
        lat = float(w.device(dev).params.get("latency_ms", 5.0))
        link, u = _start_link(w, t, lat, label)
        for guess in (a for a in (1, 2, 3) if a != ca):
            u += int(w.rng.integers(20, 80)) * MS
            link.one(u, True, i104.i_frame(0, 0, i104.c_ic_na_1(guess)), label)
            u += _lat(w, lat)
            no = i104.c_ic_na_1(guess, cot=i104.COT_UNKNOWN_CA, negative=True)
            link.one(u, False, i104.i_frame(0, 0, no), label)
        u += int(w.rng.integers(100, 300)) * MS
        u = iec.interrogations(link, w, dev, np.array([u]), lat, label=label, asked_ca=0xFFFF)
        t = iec.session(w, _near(w, params, dev), dev, t, link, t, label)
        t += int(w.rng.integers(300, 1500)) * MS
