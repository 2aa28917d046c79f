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


def _space(protocol: str, space: str):
    for name, sem in _all_tables():
        if name == protocol and sem.space == space:
            return sem
    raise AssertionError(f"{protocol} has no semantics table {space!r}")


def _pccc(*pairs: tuple[int, int]) -> list[int]:
    return [(cmd << 8) | fnc for cmd, fnc in pairs]


# Every code of ../shared/PROTOCOLS.md, transcribed section by section as
# (protocol, code space, codes). Composite codes are keyed as the dissectors key them.
PROTOCOLS_MD = {
    "3.1 Modbus function codes": (
        "modbus",
        "func_code",
        [1, 2, 3, 4, 5, 15, 6, 16, 22, 23, 21, 20, 8, 7, 11, 12, 24, 17, 43, 90],
    ),
    "3.1 Modbus FC 8 sub-functions": ("modbus", "sub_function", [0x00, 0x01, 0x04, 0x0A, 0x14]),
    "3.1 Modbus FC 43 MEI": ("modbus", "mei_type", [14, 13]),
    "3.1a UMAS": (
        "modbus",
        "umas_code",
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
    "3.2 DNP3 application functions": ("dnp3", "func_code", [*range(0, 34), 129, 130, 131]),
    "3.2 DNP3 link PRM 0/1 (primary)": ("dnp3", "link_func", [0x10, 0x11]),
    "3.3 ENIP encapsulation": ("enip", "command", [0x63, 0x04, 0x64, 0x65, 0x66, 0x6F, 0x70]),
    "3.3 CIP services": (
        "enip",
        "service",
        [0x01, 0x03, 0x0E, 0x02, 0x04, 0x10, 0x05, 0x06, 0x07, 0x08, 0x09, 0x15, 0x16],
    ),
    "3.3 CIP Connection Manager": ("enip", "service_connection_manager", [0x54, 0x5B, 0x4E, 0x52]),
    "3.3 Logix services": ("enip", "service_logix", [0x4C, 0x52, 0x55, 0x4D, 0x53, 0x4E]),
    "3.3 Execute PCCC": ("enip", "service_pccc", [0x4B]),
    "3.3 CIP classes File/PCCC": ("enip", "class", [0x37, 0x67, 0x06, 0x01, 0xF5, 0xF6, 0x43]),
    "3.3 PCCC": (
        "enip",
        "pccc",
        _pccc(
            (0x0F, 0x05),
            (0x0F, 0x50),
            (0x0F, 0x52),
            (0x07, 0x04),
            (0x0F, 0x06),
            (0x0F, 0x53),
            (0x0F, 0x55),
            (0x07, 0x06),
            (0x0F, 0x3A),
            (0x0F, 0x80),
            (0x07, 0x03),
            (0x0F, 0x07),
            (0x0F, 0x0A),
            (0x0F, 0x57),
            (0x07, 0x00),
            (0x07, 0x01),
            (0x0F, 0x41),
            (0x0F, 0x67),
            (0x0F, 0xAA),
            (0x0F, 0xAB),
            (0x0F, 0xAF),
            (0x06, 0x03),
        ),
    ),
    "3.4 S7comm functions": (
        "s7comm",
        "func_code",
        [0xF0, 0x04, 0x05, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x28, 0x29],
    ),
    "3.4 S7comm PI services": (
        "s7comm",
        "pi_service",
        ["P_PROGRAM", "_INSE", "_DELE", "_MODU", "_GARB"],
    ),
    "3.4 S7comm userdata": (
        "s7comm",
        "userdata",
        [
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 6),
            (1, 7),
            (1, 9),
            (1, 8),
            (1, 12),
            (3, 1),
            (3, 2),
            (3, 3),
            (4, 1),
            (5, 1),
            (5, 2),
        ],
    ),
    "3.4 S7comm SZL": ("s7comm", "szl_id", [0x0011, 0x001C, 0x0424, 0x00A0]),
    "3.5 PROFINET DCP services": ("profinet", "service_id", [5, 3, 6, 4]),
    "3.5 PROFINET DCP Set blocks": (
        "profinet",
        "block",
        [(1, 2), (1, 3), (2, 2), (5, 1), (5, 2), (5, 3), (5, 5), (5, 6)],
    ),
    "3.5 PROFINET DCP block qualifier": ("profinet", "block_qualifier", [0, 1]),
    "3.6 IEC 104 U functions": ("iec104", "u_function", [1, 2, 4, 8, 16, 32]),
    # 22-29 and 88-89 are reserved in IEC 60870-5-101/-104 and IEC 62351-5
    "3.6 IEC 104 type ids": (
        "iec104",
        "type_id",
        [
            *range(1, 22),
            *range(30, 41),
            45,
            46,
            47,
            58,
            59,
            60,
            48,
            49,
            50,
            61,
            62,
            63,
            51,
            64,
            100,
            101,
            102,
            103,
            105,
            107,
            110,
            111,
            112,
            113,
            *range(120, 128),
            *range(81, 88),
            *range(90, 96),
        ],
    ),
    "3.6 IEC 104 COT": ("iec104", "cot", [6, 7, 8, 10, 44, 45, 46, 47]),
}


@pytest.mark.parametrize("section", sorted(PROTOCOLS_MD))
def test_protocols_md_codes_are_declared(section):
    protocol, space, codes = PROTOCOLS_MD[section]
    assert protocol in registry().dissectors, f"no dissector for {protocol}"
    sem = _space(protocol, space)
    missing = [c for c in codes if c not in sem]
    assert not missing, f"{section}: not in {protocol}.{space}: {missing}"


# PROTOCOLS.md has no IEC 61850 section: the code spaces of Wireshark 4.0's value strings
# (tshark -G values) are the reference instead.
WIRESHARK_CODES = {
    "mms.confirmedServiceRequest": ("mms", "service", list(range(0, 78))),
    "mms.unconfirmedService": ("mms", "unconfirmed_service", [0, 1, 2]),
    "mms.MMSpdu": ("mms", "pdu_type", list(range(0, 14))),
    "mms.objectClass": ("mms", "object_class", list(range(0, 12))),
    "mms.errorClass": ("mms", "error_class", list(range(0, 13))),
    "mms.failure (DataAccessError)": ("mms", "data_access_error", list(range(0, 12))),
    "mms.rejectReason": ("mms", "reject_type", list(range(1, 12))),
    "acse.result": ("mms", "acse_result", [0, 1, 2]),
    "goose.Data": ("goose", "data_type", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]),
    "sv.smpSynch": ("sv", "smp_synch", [0, 1, 2]),
}


@pytest.mark.parametrize("space", sorted(WIRESHARK_CODES))
def test_iec61850_wireshark_codes_are_declared(space):
    protocol, name, codes = WIRESHARK_CODES[space]
    sem = _space(protocol, name)
    missing = [c for c in codes if c not in sem]
    assert not missing, f"{space}: not in {protocol}.{name}: {missing}"


def test_iec61850_dangerous_services_map_to_techniques():
    svc = _space("mms", "service")
    for code in (5,):  # write
        assert {"T0855", "T0836"} <= set(svc[code].techniques)
    for code in (26, 27, 28, 32, 34, 36, 38, 39):  # downloads, delete domain / PI
        assert "T0843" in svc[code].techniques, svc[code].name
    for code in (40, 41, 42, 43, 44):  # start, stop, resume, reset, kill
        assert "T0858" in svc[code].techniques and svc[code].category == "control"
    for code in (41, 43, 44):
        assert "T0816" in svc[code].techniques
    for code in (1, 2):  # getNameList, identify
        assert svc[code].category == "discovery"
        assert set(svc[code].techniques) & {"T0861", "T0888"}
    goose = _space("goose", "pdu")["goosePdu"]
    assert goose.category == "control" and "T0855" in goose.techniques


def test_code_names_by_lookup_table_known_unknown_and_absent():
    """Names come from a table that learns unknown codes; the dictionary stays bounded."""
    import numpy as np

    from otsight.dissect import base

    sem = base.Semantics("t", "codes", {1: ("one", "read"), 3: "three", 70: "seventy"})
    codes = np.array([1, 2, 3, 70, 70_000, 5_000_000, 2])
    assert sem.names(codes).to_pylist() == [
        "one",
        "unknown_2",
        "three",
        "seventy",
        "unknown_70000",
        "unknown_5000000",
        "unknown_2",
    ]
    # a later chunk finds the learnt codes in the table and names them the same way
    assert sem.names(np.array([2, 70_000])).to_pylist() == ["unknown_2", "unknown_70000"]
    opt = sem.optional_names(np.array([-1, 3, -7, 9]))
    assert opt.to_pylist() == [None, "three", None, "unknown_9"]
    assert opt.null_count == 2
    missing = np.array([False, True, False])
    assert sem.names(np.array([1, 1, 4]), missing=missing).to_pylist() == [
        "one",
        None,
        "unknown_4",
    ]
    # random 31-bit codes (hostile traffic): every row still named, and the next chunk's
    # dictionary does not carry them all
    rng = np.random.default_rng(7)
    noise = rng.integers(1 << 21, 1 << 31, 3 * base._MAX_UNKNOWN)
    named = sem.names(noise)
    assert named.to_pylist() == [f"unknown_{c}" for c in noise.tolist()]
    later = sem.names(np.array([3, 5]))
    assert later.to_pylist() == ["three", "unknown_5"]
    assert len(later.dictionary) <= 3 + base._MAX_UNKNOWN + 1
