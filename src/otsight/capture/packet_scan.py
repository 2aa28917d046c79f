"""The per-packet columns the L2 tables, the packet weird rows and the UDP dissectors
need, in one pass.

``cols`` is packet-major: by the time the flows stage is done its rows are out of the
cache, so every strided column read costs a cache miss per packet. One pass reads the
ethertype, decode status and transport of each row together and lists the rows that the
ARP, LLDP, weird and UDP stages want, so none of them scans the matrix again.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.dissect import _l2l4 as L


@njit(cache=True, nogil=True, _nrt=False)
def _scan(cols, ethertype, bad, arp, lldp, udp, udp_len, non_ip, counts):
    for i in range(cols.shape[0]):
        L._scan_row(cols, i, ethertype, bad, arp, lldp, udp, udp_len, non_ip, counts)


def scan_packets(cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return (ethertype column, rows with a decode problem, ARP rows, LLDP rows, rows of
    UDP over IP, their payload lengths, rows of other ethertypes than IPv4 and IPv6). The
    pipeline has them from the decode itself (``decode_l2l4_scanned``); this is for rows
    decoded elsewhere."""
    outputs = L.scan_outputs(cols.shape[0])
    _scan(cols, *outputs)
    return L.scan_result(outputs)
