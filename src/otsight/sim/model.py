"""Plants and scenarios as data: loading, defaults and precise validation.

A plant (``plants/*.yaml``) lists its networks (subnet, Purdue level), physical processes,
devices (role, vendor/model/firmware, address, protocol, register or point map), the polls
masters make, the engineering windows and the IT background. A scenario
(``scenarios.yaml``) names a plant, a default duration and the attacks injected into it.
Errors name the file and the path to the bad value; nothing is silently defaulted that the
traffic depends on.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ROLES = (
    "plc",
    "rtu",
    "ied",
    "io_device",
    "hmi",
    "scada",
    "historian",
    "engineering_workstation",
    "switch",
    "server",
    "workstation",
    "jump_host",
)
PROTOCOLS = ("modbus", "dnp3", "s7comm", "enip", "iec104", "profinet", "bacnet")


class ModelError(ValueError):
    """A plant or scenario description is unusable; the message says where and why."""


def parse_duration(text: str | int | float, where: str = "duration") -> int:
    """'10m', '24h', '90s', '1h30m', '250ms' or seconds → nanoseconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text <= 0:
            raise ModelError(f"{where}: must be positive, got {text}")
        return int(text * 1e9)
    units = {"ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", str(text).strip())
    if not parts or "".join(a + b for a, b in parts) != str(text).replace(" ", ""):
        raise ModelError(f"{where}: {text!r} is not a duration like 90s, 10m, 24h or 1h30m")
    total = sum(float(a) * units[b] for a, b in parts)
    if total <= 0:
        raise ModelError(f"{where}: must be positive, got {text!r}")
    return int(total)


@dataclass
class Device:
    name: str
    role: str
    network: str
    ip: str | None
    mac: str
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    protocols: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # protocol settings, maps


@dataclass
class Plant:
    name: str
    title: str
    description: str
    start: str
    networks: dict[str, dict[str, Any]]
    processes: list[dict[str, Any]]
    devices: dict[str, Device]
    polls: list[dict[str, Any]]
    engineering: dict[str, Any]
    background: dict[str, Any]
    source: str

    def level(self, device: str) -> int:
        return int(self.networks[self.devices[device].network]["level"])


@dataclass
class AttackSpec:
    name: str  # instance name: the label of its frames
    attack: str  # library entry
    at: int  # ns after the capture start
    params: dict[str, Any]


@dataclass
class Scenario:
    name: str
    plant: str
    description: str
    duration: int
    attacks: list[AttackSpec]


def _req(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ModelError(f"{where}: missing required key {key!r}")
    return d[key]


def _mac_for(ip: str) -> str:
    a = ipaddress.IPv4Address(ip).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in a)  # locally administered, from the IP


def load_plant(path: Path | str) -> Plant:
    path = Path(path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ModelError(f"{where}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise ModelError(f"{where}{at}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return plant_from_dict(data, where)


def plant_from_dict(data: Any, where: str) -> Plant:
    if not isinstance(data, dict):
        raise ModelError(f"{where}: a plant is a mapping")
    networks = _req(data, "networks", where)
    for net, spec in networks.items():
        w = f"{where}: networks.{net}"
        try:
            spec["subnet"] = str(ipaddress.IPv4Network(_req(spec, "subnet", w)))
        except ValueError as exc:
            raise ModelError(f"{w}.subnet: {exc}") from None
        if not isinstance(_req(spec, "level", w), int) or not 0 <= spec["level"] <= 5:
            raise ModelError(f"{w}.level: a Purdue level 0..5")
    devices: dict[str, Device] = {}
    for i, d in enumerate(_req(data, "devices", where)):
        w = f"{where}: devices[{i}]"
        name = _req(d, "name", w)
        w = f"{where}: devices.{name}"
        if name in devices:
            raise ModelError(f"{w}: duplicate device name")
        role = _req(d, "role", w)
        if role not in ROLES:
            raise ModelError(f"{w}.role: {role!r} is not one of {', '.join(ROLES)}")
        net = _req(d, "network", w)
        if net not in networks:
            raise ModelError(f"{w}.network: unknown network {net!r}")
        ip = d.get("ip")
        if ip is not None:
            try:
                addr = ipaddress.IPv4Address(ip)
            except ValueError as exc:
                raise ModelError(f"{w}.ip: {exc}") from None
            if addr not in ipaddress.IPv4Network(networks[net]["subnet"]):
                raise ModelError(f"{w}.ip: {ip} is outside {net} ({networks[net]['subnet']})")
        protocols = tuple(d.get("protocols", ()))
        for p in protocols:
            if p not in PROTOCOLS:
                raise ModelError(f"{w}.protocols: unknown protocol {p!r}")
        known = {"name", "role", "network", "ip", "mac", "vendor", "model", "firmware"}
        known |= {"serial", "protocols"}
        devices[name] = Device(
            name=name,
            role=role,
            network=net,
            ip=str(ip) if ip else None,
            mac=str(d.get("mac") or _mac_for(ip or "0.0.0.0")),
            vendor=str(d.get("vendor", "")),
            model=str(d.get("model", "")),
            firmware=str(d.get("firmware", "")),
            serial=str(d.get("serial", "")),
            protocols=protocols,
            params={k: v for k, v in d.items() if k not in known},
        )
    signals = set()
    processes = data.get("processes", [])
    for i, p in enumerate(processes):
        w = f"{where}: processes[{i}]"
        _req(p, "name", w)
        _req(p, "model", w)
        outs = {"tank": ("level", "inflow", "outflow", "pump", "valve"), "breaker": ("state",)}
        for o in outs.get(p["model"], ("value",)):
            signals.add(f"{p['name']}.{o}")
    for dev in devices.values():
        maps = {k: dev.params.get(k, []) for k in ("registers", "tags", "measurements")}
        for kind, entries in (dev.params.get("points") or {}).items():
            maps[f"points.{kind}"] = entries
        for kind, entries in maps.items():
            for j, r in enumerate(entries):
                for key in ("signal", "gate"):  # gate: a breaker state that zeroes the value
                    sig = r.get(key)
                    if sig is not None and sig not in signals:
                        raise ModelError(
                            f"{where}: devices.{dev.name}.{kind}[{j}].{key}: unknown signal"
                            f" {sig!r} (known: {', '.join(sorted(signals))})"
                        )
    polls = data.get("polls", [])
    for i, p in enumerate(polls):
        w = f"{where}: polls[{i}]"
        for end in ("master", "slave"):
            if _req(p, end, w) not in devices:
                raise ModelError(f"{w}.{end}: unknown device {p[end]!r}")
        if _req(p, "protocol", w) not in PROTOCOLS:
            raise ModelError(f"{w}.protocol: unknown protocol {p['protocol']!r}")
        p["interval_ns"] = parse_duration(_req(p, "interval", w), f"{w}.interval")
    eng = data.get("engineering", {}) or {}
    if eng:
        if _req(eng, "workstation", f"{where}: engineering") not in devices:
            raise ModelError(f"{where}: engineering.workstation: unknown device")
        for j, win in enumerate(eng.get("windows", [])):
            for t in win.get("targets", []):
                if t not in devices:
                    raise ModelError(f"{where}: engineering.windows[{j}].targets: unknown {t!r}")
    bg = data.get("background", {}) or {}
    for key, v in bg.items():
        for name in v if isinstance(v, list) else [v]:
            if isinstance(name, str) and name not in devices:
                raise ModelError(f"{where}: background.{key}: unknown device {name!r}")
    return Plant(
        name=str(_req(data, "name", where)),
        title=str(data.get("title", data["name"])),
        description=str(data.get("description", "")),
        start=str(data.get("start", "2024-06-03T00:00:00Z")),
        networks=networks,
        processes=processes,
        devices=devices,
        polls=polls,
        engineering=eng,
        background=bg,
        source=where,
    )


def _package_dir() -> Path:
    return Path(str(resources.files("otsight.sim")))


def plant_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted((_package_dir() / "plants").glob("*.yaml"))}


def load_named_plant(name: str) -> Plant:
    paths = plant_paths()
    if name not in paths:
        raise ModelError(f"unknown plant {name!r} (plants: {', '.join(paths)})")
    return load_plant(paths[name])


def load_scenarios(path: Path | None = None) -> dict[str, Scenario]:
    path = path or _package_dir() / "scenarios.yaml"
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"{where}: cannot read scenarios ({exc})") from None
    out: dict[str, Scenario] = {}
    for i, s in enumerate(data or []):
        w = f"{where}: [{i}]"
        name = _req(s, "name", w)
        w = f"{where}: {name}"
        attacks = []
        for j, a in enumerate(s.get("attacks", [])):
            aw = f"{w}.attacks[{j}]"
            attacks.append(
                AttackSpec(
                    name=str(a.get("name") or f"{_req(a, 'attack', aw)}_{j + 1}"),
                    attack=str(_req(a, "attack", aw)),
                    at=parse_duration(_req(a, "at", aw), f"{aw}.at"),
                    params={k: v for k, v in a.items() if k not in ("name", "attack", "at")},
                )
            )
        out[name] = Scenario(
            name=name,
            plant=str(_req(s, "plant", w)),
            description=str(s.get("description", "")),
            duration=parse_duration(s.get("duration", "10m"), f"{w}.duration"),
            attacks=attacks,
        )
    return out
