"""Semantics tables: ATT&CK ids exist, and every code PROTOCOLS.md lists is declared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otsight.attack import techniques
from otsight.attack.derive import derive
from otsight.dissect.registry import registry

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def _all_tables():
    for cls in registry().dissectors.values():
        for sem in cls.semantics:
            yield cls.name, sem


def test_shipped_technique_table_matches_the_bundle():
    bundle = SHARED / "data" / "attack" / "ics-attack.json"
    if not bundle.exists():
        pytest.skip("shared ATT&CK bundle absent")
    assert derive(bundle) == techniques()


def test_every_technique_id_exists_in_attack_for_ics():
    bundle = SHARED / "data" / "attack" / "ics-attack.json"
    ids = set(techniques())
    if bundle.exists():
        data = json.loads(bundle.read_text())
        ids = {
            r["external_id"]
            for o in data["objects"]
            if o.get("type") == "attack-pattern"
            and not o.get("revoked")
            and not o.get("x_mitre_deprecated")
            for r in o.get("external_references", [])
            if r.get("source_name") == "mitre-attack"
        }
    used = set()
    for name, sem in _all_tables():
        missing = sem.techniques() - ids
        assert not missing, f"{name}.{sem.space}: {missing}"
        used |= sem.techniques()
    assert len(used) >= 25


def _keys(protocol: str) -> set:
    keys: set = set()
    for name, sem in _all_tables():
        if name == protocol:
            keys |= set(sem.rows)
    return keys


# Every code of ../shared/PROTOCOLS.md, section by section, as (protocol, code).
PROTOCOLS_MD = {
    "3.1 Modbus": (
        "modbus",
        [
            1,
            2,
            3,
            4,
            5,
            15,
            6,
            16,
            22,
            23,
            21,
            20,
            0x00,
            0x01,
            0x04,
            0x0A,
            0x14,
            7,
            11,
            12,
            24,
            17,
            43,
            14,
            90,
        ],
    ),
    "3.1a UMAS": (
        "modbus",
        [
            0x01,
            0x02,
            0x03,
            0x04,
            0x06,
            0x0A,
            0x12,
            0x58,
            0x73,
            0x10,
            0x11,
            0x20,
            0x22,
            0x50,
            0x23,
            0x25,
            0x71,
            0x24,
            0x70,
            0x39,
            0x30,
            0x31,
            0x32,
            0x33,
            0x34,
            0x35,
            0x40,
            0x41,
            0xFE,
            0xFD,
        ],
    ),
    "3.5 PROFINET DCP": ("profinet", [5, 3, 6, 4]),
}


@pytest.mark.parametrize("section", sorted(PROTOCOLS_MD))
def test_protocols_md_codes_are_declared(section):
    protocol, codes = PROTOCOLS_MD[section]
    if protocol not in registry().dissectors:
        pytest.fail(f"no dissector for {protocol}")
    keys = _keys(protocol)
    missing = [c for c in codes if c not in keys]
    assert not missing, f"{section}: codes not in {protocol}'s semantics tables: {missing}"
