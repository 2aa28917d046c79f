"""TCP conversations in bulk: messages in, a clean packet stream out.

A conversation is given as columns of application messages (timestamp, direction, payload
slice, label). Sequence and acknowledgement numbers follow from cumulative sums; the peer
acknowledges with a pure ACK after ``ack_delay`` unless it answers (or the sender sends
again) sooner — as delayed-ACK stacks do. A handshake and an orderly close are added when the
conversation opens or closes inside the capture. All of it is array arithmetic, so a
conversation of a million polls costs about as much as one of ten.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otsight.sim.wire import ACK, FIN, PSH, SYN, TCP, UDP, Packets

MS = 1_000_000


@dataclass(frozen=True)
class Endpoints:
    client: int  # host index (wire.HostTable)
    server: int
    client_port: int
    server_port: int


def conversation(
    out: Packets,
    ends: Endpoints,
    ts: np.ndarray,
    from_client: np.ndarray,
    pay_off: np.ndarray,
    pay_len: np.ndarray,
    label: np.ndarray | int,
    rng: np.random.Generator,
    open_at: int | None = None,
    close_at: int | None = None,
    ack_delay: int = 40 * MS,
    handshake_label: int = 0,
) -> None:
    """Add one TCP connection's packets to ``out``.

    ``open_at``: time of the SYN (the connection is already open when None); ``close_at``:
    time of the client's FIN (still open at the end when None).
    """
    n = ts.shape[0]
    order = np.argsort(ts, kind="stable")
    ts, fc = ts[order], from_client[order].astype(bool)
    po, pl = pay_off[order], pay_len[order]
    lab = np.broadcast_to(np.asarray(label, np.int64), (n,))[order] if n else np.zeros(0, np.int64)
    isn_c, isn_s = (int(x) for x in rng.integers(0, 2**32, 2))
    ipid_c, ipid_s = (int(x) for x in rng.integers(0, 2**16, 2))
    win_c, win_s = 64240, 8192
    c_len = np.where(fc, pl, 0)
    s_len = np.where(fc, 0, pl)
    c_before = np.cumsum(c_len) - c_len  # client bytes sent before each message
    s_before = np.cumsum(s_len) - s_len
    c_next, s_next = isn_c + 1, isn_s + 1
    seq = np.where(fc, c_next + c_before, s_next + s_before)
    ack = np.where(fc, s_next + s_before, c_next + c_before)

    # pure ACKs: the receiver of message i acknowledges after ack_delay unless the next
    # message (either side) comes first — it then carries or triggers the acknowledgement
    gap = np.diff(ts, append=np.iinfo(np.int64).max)
    if close_at is not None and n:
        gap[-1] = max(int(close_at) - int(ts[-1]), 0)
    need = gap > ack_delay
    a = np.flatnonzero(need)
    a_ts = ts[a] + ack_delay
    a_fc = ~fc[a]  # the acknowledging side
    a_seq = np.where(a_fc, c_next + c_before[a] + c_len[a], s_next + s_before[a] + s_len[a])
    a_ack = np.where(a_fc, s_next + s_before[a] + s_len[a], c_next + c_before[a] + c_len[a])

    parts_ts = [ts, a_ts]
    parts_fc = [fc, a_fc]
    parts_seq = [seq, a_seq]
    parts_ack = [ack, a_ack]
    parts_flags = [np.full(n, PSH | ACK), np.full(a.shape[0], ACK)]
    parts_po = [po, np.zeros(a.shape[0], np.int64)]
    parts_pl = [pl, np.zeros(a.shape[0], np.int64)]
    parts_lab = [lab, lab[a]]

    def extra(t, client_side, s, k, flags, lb):
        parts_ts.append(np.array([t], np.int64))
        parts_fc.append(np.array([client_side]))
        parts_seq.append(np.array([s], np.int64))
        parts_ack.append(np.array([k], np.int64))
        parts_flags.append(np.array([flags]))
        parts_po.append(np.zeros(1, np.int64))
        parts_pl.append(np.zeros(1, np.int64))
        parts_lab.append(np.array([lb], np.int64))

    if open_at is not None:
        rtt = int(rng.integers(200_000, 900_000))  # 0.2–0.9 ms on a plant LAN
        extra(open_at, True, isn_c, 0, SYN, handshake_label)
        extra(open_at + rtt // 2, False, isn_s, isn_c + 1, SYN | ACK, handshake_label)
        extra(open_at + rtt, True, isn_c + 1, isn_s + 1, ACK, handshake_label)
    if close_at is not None:
        c_end = c_next + int(c_len.sum())
        s_end = s_next + int(s_len.sum())
        lb = int(lab[-1]) if n else handshake_label
        extra(close_at, True, c_end, s_end, FIN | ACK, lb)
        extra(close_at + 300_000, False, s_end, c_end + 1, FIN | ACK, lb)
        extra(close_at + 600_000, True, c_end + 1, s_end + 1, ACK, lb)

    all_fc = np.concatenate(parts_fc)
    all_ts = np.concatenate(parts_ts)
    # IP identifiers count up per sender in time order
    o = np.argsort(all_ts, kind="stable")
    ipid = np.empty(all_ts.shape[0], np.int64)
    cf = all_fc[o]
    ipid[o] = np.where(cf, ipid_c + np.cumsum(cf) - 1, ipid_s + np.cumsum(~cf) - 1) & 0xFFFF
    out.add(
        ts=all_ts,
        kind=TCP,
        src=np.where(all_fc, ends.client, ends.server),
        dst=np.where(all_fc, ends.server, ends.client),
        sport=np.where(all_fc, ends.client_port, ends.server_port),
        dport=np.where(all_fc, ends.server_port, ends.client_port),
        seq=np.concatenate(parts_seq) & 0xFFFFFFFF,
        ack=np.concatenate(parts_ack) & 0xFFFFFFFF,
        flags=np.concatenate(parts_flags),
        window=np.where(all_fc, win_c, win_s),
        ip_id=ipid,
        ttl=np.where(all_fc, 128, 64),
        pay_off=np.concatenate(parts_po),
        pay_len=np.concatenate(parts_pl),
        label=np.concatenate(parts_lab),
    )


def udp(
    out: Packets,
    src: np.ndarray | int,
    dst: np.ndarray | int,
    sport: np.ndarray | int,
    dport: np.ndarray | int,
    ts: np.ndarray,
    pay_off: np.ndarray,
    pay_len: np.ndarray,
    label: np.ndarray | int = 0,
    ttl: int = 64,
) -> None:
    """Add UDP datagrams (IP identifiers drawn from the timestamp: unique enough)."""
    out.add(
        ts=ts,
        kind=UDP,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        ip_id=(ts // 1000) & 0xFFFF,
        ttl=ttl,
        pay_off=pay_off,
        pay_len=pay_len,
        label=label,
    )
