"""Every context the pipeline hands to the dissectors, the end-of-capture one included,
has a read-only buffer: the kernels then see one array type and load one compiled
version of themselves, not a second one (or a compile) for the last context."""

from __future__ import annotations

from pathlib import Path

from otsight.analyze import default_tables
from otsight.dissect.registry import registry
from otsight.encode import modbus as mb
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation
from otsight.pipeline import CapturePipeline


def test_every_context_buffer_is_read_only_and_the_last_one_has_pdus(tmp_path: Path):
    conv = TcpConversation(
        "02:00:00:00:00:01", "10.0.0.1", 50001, "02:00:00:00:00:02", "10.0.0.2", 502, 5, 7
    )
    frames = conv.handshake()
    frames += conv.send(True, mb.read_request(1, 1, 3, 0, 4))
    conv.send(True, mb.read_request(2, 1, 3, 0, 4))  # lost: the next request waits in order
    frames += conv.send(True, mb.read_request(3, 1, 3, 0, 4))
    path = tmp_path / "hole.pcap"
    with PcapWriter(path) as w:
        for k, f in enumerate(frames):
            w.write(1_700_000_000_000_000_000 + k * 1000, f)
    seen = []
    pipe = CapturePipeline(
        path,
        "hole",
        set(default_tables()),
        list(registry().dissectors.values()),
        on_chunk=lambda ctx: seen.append((ctx.chunk.buf.flags.writeable, ctx.track.pdus.shape[0])),
    )
    rows = sum(b.num_rows for t, b in pipe.batches() if t == "modbus")
    assert rows == 2  # the request after the hole came out at the end of the capture
    assert len(seen) >= 2 and seen[-1][1] == 1
    assert not any(writeable for writeable, _ in seen)
