"""A TCP conversation between two hosts that yields ready-made Ethernet frames.

Sequence/acknowledgement numbers and IP identifiers are tracked so that frames produced
through :meth:`TcpConversation.handshake`, :meth:`~TcpConversation.send` and
:meth:`~TcpConversation.close` form a clean stream.  :meth:`~TcpConversation.segment`
gives raw control (retransmissions, overlaps, gaps) without touching the bookkeeping.
Timestamps are the caller's business.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from otsight.encode.packets import (
    ETH_IPV4,
    ETH_IPV6,
    IPPROTO_TCP,
    ethernet,
    ipv4,
    ipv6,
    tcp,
)

__all__ = ["TcpConversation"]

_MSS_OPTION = b"\x02\x04\x05\xb4"  # MSS 1460


class _Side:
    """Per-endpoint state: addresses, next sequence number, next IP id."""

    __slots__ = ("mac", "ip", "port", "next_seq", "ip_id")

    def __init__(self, mac: str, ip: str, port: int, isn: int, ip_id: int) -> None:
        self.mac = mac
        self.ip = ip
        self.port = port
        self.next_seq = (isn + 1) & 0xFFFFFFFF  # as if the SYN had been sent
        self.ip_id = ip_id


class TcpConversation:
    """Frames for one TCP connection; ``from_client`` picks the sending side.

    If :meth:`handshake` is never called the conversation behaves as if it had been
    (first data byte at ``isn + 1``), which models a capture started mid-connection.
    """

    def __init__(
        self,
        client_mac: str,
        client_ip: str,
        client_port: int,
        server_mac: str,
        server_ip: str,
        server_port: int,
        isn_client: int,
        isn_server: int,
        vlans: Iterable[tuple[int, int, int]] = (),
        window: int = 8192,
        ttl: int = 64,
    ) -> None:
        self.client = _Side(client_mac, client_ip, client_port, isn_client, isn_client >> 16)
        self.server = _Side(server_mac, server_ip, server_port, isn_server, isn_server >> 16)
        self.isn_client = isn_client & 0xFFFFFFFF
        self.isn_server = isn_server & 0xFFFFFFFF
        self.vlans = tuple(vlans)
        self.window = window
        self.ttl = ttl
        self._v6 = ipaddress.ip_address(client_ip).version == 6

    # ----------------------------------------------------------------- primitives

    def _sides(self, from_client: bool) -> tuple[_Side, _Side]:
        return (self.client, self.server) if from_client else (self.server, self.client)

    def _frame(
        self,
        from_client: bool,
        seq: int,
        ack: int,
        flags: str,
        payload: bytes = b"",
        options: bytes = b"",
    ) -> bytes:
        src, dst = self._sides(from_client)
        seg = tcp(
            src.ip, dst.ip, src.port, dst.port, seq, ack, flags, self.window, payload, options
        )
        if self._v6:
            packet = ipv6(src.ip, dst.ip, IPPROTO_TCP, seg, hop_limit=self.ttl)
            return ethernet(dst.mac, src.mac, ETH_IPV6, packet, self.vlans)
        packet = ipv4(src.ip, dst.ip, IPPROTO_TCP, seg, ident=src.ip_id, ttl=self.ttl)
        src.ip_id = (src.ip_id + 1) & 0xFFFF
        return ethernet(dst.mac, src.mac, ETH_IPV4, packet, self.vlans)

    # ----------------------------------------------------------------- public API

    def handshake(self) -> list[bytes]:
        """SYN, SYN/ACK, ACK (with MSS options on the SYNs)."""
        return [
            self._frame(True, self.isn_client, 0, "S", options=_MSS_OPTION),
            self._frame(False, self.isn_server, self.client.next_seq, "SA", options=_MSS_OPTION),
            self._frame(True, self.client.next_seq, self.server.next_seq, "A"),
        ]

    def send(
        self,
        from_client: bool,
        payload: bytes,
        segment_sizes: Sequence[int] | None = None,
        push: bool = True,
        order: Sequence[int] | None = None,
    ) -> list[bytes]:
        """Send ``payload`` in one segment, or split by ``segment_sizes`` (last takes the rest).

        ``order`` permutes the emitted segments (e.g. ``[1, 0]`` for out-of-order
        delivery); sequence numbers still describe the logical layout.  PSH is set on the
        logically last segment when ``push``.
        """
        src, dst = self._sides(from_client)
        pieces: list[bytes] = []
        pos = 0
        for size in segment_sizes or ():
            if pos + size >= len(payload):
                break
            pieces.append(payload[pos : pos + size])
            pos += size
        pieces.append(payload[pos:])
        frames: list[bytes] = []
        seq = src.next_seq
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            frames.append(
                self._frame(from_client, seq, dst.next_seq, "PA" if push and last else "A", piece)
            )
            seq += len(piece)
        src.next_seq = seq & 0xFFFFFFFF
        if order is not None:
            if sorted(order) != list(range(len(frames))):
                raise ValueError("order must be a permutation of the segment indices")
            frames = [frames[i] for i in order]
        return frames

    def segment(
        self,
        from_client: bool,
        payload: bytes,
        seq_offset: int = 0,
        flags: str = "PA",
    ) -> bytes:
        """One raw segment at ``next_seq + seq_offset``; bookkeeping is not changed.

        Example: after ``send(True, data)``, ``segment(True, data, -len(data))`` is a
        retransmission of the same bytes (with a fresh IP id).
        """
        src, dst = self._sides(from_client)
        return self._frame(from_client, src.next_seq + seq_offset, dst.next_seq, flags, payload)

    def ack(self, from_client: bool) -> bytes:
        """A pure ACK acknowledging everything the peer has sent."""
        src, dst = self._sides(from_client)
        return self._frame(from_client, src.next_seq, dst.next_seq, "A")

    def close(self, from_client: bool = True) -> list[bytes]:
        """Orderly release: FIN/ACK, peer FIN/ACK, final ACK."""
        src, dst = self._sides(from_client)
        frames = [self._frame(from_client, src.next_seq, dst.next_seq, "FA")]
        src.next_seq = (src.next_seq + 1) & 0xFFFFFFFF
        frames.append(self._frame(not from_client, dst.next_seq, src.next_seq, "FA"))
        dst.next_seq = (dst.next_seq + 1) & 0xFFFFFFFF
        frames.append(self._frame(from_client, src.next_seq, dst.next_seq, "A"))
        return frames

    def reset(self, from_client: bool = True) -> bytes:
        """An RST/ACK from the chosen side."""
        src, dst = self._sides(from_client)
        return self._frame(from_client, src.next_seq, dst.next_seq, "RA")
