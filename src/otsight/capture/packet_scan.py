"""The per-packet columns the L2 tables and the packet weird rows need, in one pass.

``cols`` is packet-major: by the time the flows stage is done its rows are out of the
cache, so every strided column read costs a cache miss per packet. One pass reads the
ethertype and the decode status of each row together and lists the few rows that the ARP,
LLDP and weird stages want, so none of them scans the matrix again.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.dissect import _l2l4 as L


@njit(cache=True, nogil=True)
def scan_packets(cols):
    """Return (ethertype column, rows with a decode problem, ARP rows, LLDP rows)."""
    n = cols.shape[0]
    ethertype = np.empty(n, np.int64)
    bad = np.empty(n, np.int64)
    arp = np.empty(n, np.int64)
    lldp = np.empty(n, np.int64)
    nb = na = nl = 0
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
    return ethertype, bad[:nb].copy(), arp[:na].copy(), lldp[:nl].copy()
