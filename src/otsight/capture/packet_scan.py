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


@njit(cache=True, nogil=True)
def scan_packets(cols):
    """Return (ethertype column, rows with a decode problem, ARP rows, LLDP rows, rows of
    UDP over IP, their payload lengths, rows of other ethertypes than IPv4 and IPv6). The
    pipeline has them from the decode itself (``decode_l2l4_scanned``); this is for rows
    decoded elsewhere."""
    n = cols.shape[0]
    ethertype = np.empty(n, np.int64)
    bad = np.empty(n, np.int64)
    arp = np.empty(n, np.int64)
    lldp = np.empty(n, np.int64)
    udp = np.empty(n, np.int64)
    udp_len = np.empty(n, np.int64)
    non_ip = np.empty(n, np.int64)
    counts = np.zeros(5, np.int64)
    for i in range(n):
        L._scan_row(cols, i, ethertype, bad, arp, lldp, udp, udp_len, non_ip, counts)
    nb, na, nl, nu, nn = counts[0], counts[1], counts[2], counts[3], counts[4]
    return (
        ethertype,
        bad[:nb].copy(),
        arp[:na].copy(),
        lldp[:nl].copy(),
        udp[:nu].copy(),
        udp_len[:nu].copy(),
        non_ip[:nn].copy(),
    )
