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
    UDP over IP, their payload lengths)."""
    n = cols.shape[0]
    ethertype = np.empty(n, np.int64)
    bad = np.empty(n, np.int64)
    arp = np.empty(n, np.int64)
    lldp = np.empty(n, np.int64)
    udp = np.empty(n, np.int64)
    udp_len = np.empty(n, np.int64)
    nb = na = nl = nu = 0
    for i in range(n):
        et = cols[i, L.ETHERTYPE]
        ethertype[i] = et
        if cols[i, L.STATUS] != 0:
            bad[nb] = i
            nb += 1
        if et == L.ETH_ARP:
            arp[na] = i
            na += 1
        elif et == L.ETH_LLDP:
            lldp[nl] = i
            nl += 1
        if cols[i, L.PROTO] == 17 and cols[i, L.IPVER] != 0:
            udp[nu] = i
            udp_len[nu] = cols[i, L.PAY_LEN]
            nu += 1
    return (
        ethertype,
        bad[:nb].copy(),
        arp[:na].copy(),
        lldp[:nl].copy(),
        udp[:nu].copy(),
        udp_len[:nu].copy(),
    )
