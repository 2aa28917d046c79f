"""Every dissector survives mutated real PDUs: no exception, no dissector switched off, no hang.

The default suite runs 20,000 mutations of real corpus PDUs (all framed TCP protocols,
BACnet, DNP3 and FINS over UDP, PROFINET, GOOSE and SV frames) through the whole pipeline
in a child process with a time limit. The long run is the same command with ``--mutations 1000000``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SEED_CAPTURES = [
    "modbus/ICS-Security-Tools__modbus_test_data_part2.pcap",
    "modbus/testing_tools__mod_43.pcap",
    "enip/ICS-Security-Tools__cip_only.pcap",
    "enip/ICS-Security-Tools__EIP-IPAddressChangeAttempt.pcap",
    "dnp3/ICS-Security-Tools__dnp3.pcap",
    "dnp3/zeek__dnp3_udp_select_operate.pcap",
    "s7comm/ICS-Security-Tools__s7comm_clean.pcap",
    "s7comm/ICS-Security-Tools__tia_s300_goOnline.pcap",
    "iec104/ICS-Security-Tools__TestDissectIec104.pcap",
    "bacnet/icsnpp-bacnet__bacnet_example.pcap",
    "profinet/icsnpp-profinet-io-cm__profinet_io_cm_mixed_1.pcap",
    "profinet/ICS-Security-Tools__ChangeIPUsingDCP.pcap",
    "opcua/icsnpp-opcua-binary__open62541_client-server_minimal.pcap",
    "opcua/icsnpp-opcua-binary__python_opcua-client-server_encrypted.pcap",
    "fins/icsnpp-omron-fins__omron.pcap",
    "fins/icsnpp-omron-fins__omron_fins_tcp_commands_responses.pcap",
    "iec61850/ICS-Security-Tools__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap",
    "iec61850/ICS-Security-Tools__mms-killRequest.pcap",
    "iec61850/ICS-Security-Tools__Sample_File_MMS_and_GOOSE.pcap",
    "iec61850/icsnpp-iec61850-goose__GOOSE_all_data_primitives_fallbacks.pcap",
    "iec61850/testing_tools__sv.pcap",
]


def _fuzz(paths: list[Path], mutations: int, timeout: float) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otsight.testing.fuzz",
            *map(str, paths),
            "--mutations",
            str(mutations),
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report["failures"]
    return report


def test_20k_mutations_of_real_pdus(corpus):
    paths = [Path(corpus) / p for p in SEED_CAPTURES]
    report = _fuzz(paths, 20_000, timeout=600)
    assert report["mutations"] == 20_000 and not report["failures"]
    assert set(report["kinds"]) == {
        "bitflip",
        "boundary",
        "truncate",
        "lie16",
        "lie8",
        "extend",
        "repeat",
    }
    protocols = set(report["by_protocol"])
    assert {"modbus", "enip", "dnp3", "tpkt", "iec104", "udp:47808", "l2:0x8892"} <= protocols
    assert {"opcua", "fins", "udp:9600"} <= protocols
    assert {"l2:0x88b8", "l2:0x88ba"} <= protocols  # GOOSE, Sampled Values
    assert report["weird"], "mutants must produce weird rows, not vanish"


def test_mutations_of_generated_capture(samples):
    report = _fuzz([samples["pcapng"]], 3_000, timeout=300)
    assert report["mutations"] == 3_000 and not report["failures"]
