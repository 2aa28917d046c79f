"""IT background: what Windows hosts in and around the control zone do all day.

Name resolution (DNS to the domain controller, NetBIOS broadcasts), time sync (NTP), file
shares (SMB2 reads from the file server in the enterprise zone) and administrators' RDP
inside the enterprise zone. The same building blocks (:func:`smb_copy`, :func:`rdp_session`)
write the attack variants: a file copied onto the engineering workstation, RDP from the IT
zone into the control zone.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from otsight.encode import it
from otsight.sim.world import MS, S, World

NAMES = (
    "dc-1.plant.local",
    "fs-1.plant.local",
    "wsus.plant.local",
    "historian.plant.local",
    "time.windows.com",
    "ctldl.windowsupdate.com",
    "login.microsoftonline.com",
)


def _poisson_times(w: World, mean_s: float, start: int | None = None) -> np.ndarray:
    start = w.t0 if start is None else start
    n = int((w.end - start) / (mean_s * S) * 1.5) + 4
    gaps = w.rng.exponential(mean_s * S, n).astype(np.int64)
    t = start + np.cumsum(gaps)
    return t[t < w.end]


def build(w: World) -> None:
    bg = w.plant.background
    server = bg.get("dns_server")
    clients = list(bg.get("clients", []))
    if server:
        for c in clients:
            _dns(w, c, server)
            _ntp(w, c, server)
    for c in clients:
        _nbns(w, c)
    fs = bg.get("file_server")
    office = [c for c in clients if w.device(c).network == w.device(fs).network] if fs else []
    for c in office:
        for t in _poisson_times(w, 1800.0):
            smb_copy(
                w,
                c,
                fs,
                "shared",
                f"reports\\shift_{int(t) % 97:02d}.xlsx",
                int(w.rng.integers(2_000, 60_000)),
                int(t),
                label=0,
                write=False,
            )
    if server and office:
        for t in _poisson_times(w, 4 * 3600.0):
            rdp_session(w, office[0], server, int(t), 0, "it-admin")


def _dns(w: World, client: str, server: str) -> None:
    ts = _poisson_times(w, 90.0)
    if not ts.shape[0]:
        return
    c, s = w.host(client), w.host(server)
    names = [NAMES[int(i)] for i in w.rng.integers(0, len(NAMES), ts.shape[0])]
    ids = w.rng.integers(0, 65536, ts.shape[0])
    sport = int(w.rng.integers(50000, 60000))
    q = [it.dns_query(int(i), n) for i, n in zip(ids, names, strict=True)]
    r = [
        it.dns_response(int(i), n, it.DNS_A, [_address_of(w, n)], ttl=600)
        for i, n in zip(ids, names, strict=True)
    ]
    w.datagrams(c, s, sport, 53, ts, q)
    w.datagrams(s, c, 53, sport, ts + int(0.6 * MS), r)


def _address_of(w: World, name: str) -> str:
    short = name.split(".")[0]
    if short in w.plant.devices and w.device(short).ip:
        return str(w.device(short).ip)
    return str(ipaddress.IPv4Address(0x0D6B0000 + (hash(name) & 0xFFFF)))  # 13.107.x.x


def _ntp(w: World, client: str, server: str) -> None:
    ts = np.arange(w.t0 + int(w.rng.integers(0, 1024 * S)), w.end, 1024 * S, dtype=np.int64)
    c, s = w.host(client), w.host(server)
    q = [it.ntp_client(int(t)) for t in ts]
    r = [it.ntp_server(int(t), int(t) + 200_000, int(t) + 250_000, int(t) - 30 * S) for t in ts]
    w.datagrams(c, s, 123, 123, ts, q)
    w.datagrams(s, c, 123, 123, ts + MS, r)


def _nbns(w: World, client: str) -> None:
    dev = w.device(client)
    if not dev.ip:
        return
    net = ipaddress.IPv4Network(w.plant.networks[dev.network]["subnet"])
    bcast = w.extra_host("ff:ff:ff:ff:ff:ff", str(net.broadcast_address))
    ts = _poisson_times(w, 600.0)
    q = [
        it.nbns_query(int(i), str(n))
        for i, n in zip(w.rng.integers(0, 65536, ts.shape[0]), ["WPAD"] * ts.shape[0], strict=True)
    ]
    w.datagrams(w.host(client), bcast, 137, 137, ts, q)


def smb_copy(
    w: World,
    client: str | int,
    server: str | int,
    share: str,
    filename: str,
    size: int,
    start: int,
    label: int,
    write: bool = True,
    user: str = "operator",
) -> int:
    """An SMB2 session: negotiate, NTLM authentication, tree connect, create, then write
    (copy to the server) or read the file in 64 KiB pieces, close, disconnect."""
    c = w.host(client) if isinstance(client, str) else client
    s = w.host(server) if isinstance(server, str) else server
    server_ip = w.hosts.ip(s)
    sid, tid = int(w.rng.integers(1, 2**40)), int(w.rng.integers(1, 2**16))
    fid = bytes(w.rng.integers(0, 256, 16, dtype=np.uint8))
    guid = bytes(w.rng.integers(0, 256, 16, dtype=np.uint8))
    chal = bytes(w.rng.integers(0, 256, 8, dtype=np.uint8))
    pairs = [
        (
            it.smb2_negotiate_request(0, guid),
            it.smb2_negotiate_response(0, guid, start, start - 86400 * S),
        ),
        (
            it.smb2_session_setup_request(1, it.spnego_init(it.ntlmssp_negotiate())),
            it.smb2_session_setup_response(
                1,
                sid,
                it.spnego_response(1, it.ntlmssp_challenge(chal, "PLANT", "FS", start), mech=True),
                it.NT_STATUS_MORE_PROCESSING_REQUIRED,
            ),
        ),
        (
            it.smb2_session_setup_request(
                2,
                it.spnego_response(1, it.ntlmssp_authenticate(user, "PLANT", "WS", chal, start)),
                sid,
            ),
            it.smb2_session_setup_response(2, sid, it.spnego_response(0)),
        ),
        (
            it.smb2_tree_connect_request(3, sid, f"\\\\{server_ip}\\{share}"),
            it.smb2_tree_connect_response(3, sid, tid),
        ),
        (
            it.smb2_create_request(
                4,
                sid,
                tid,
                filename,
                disposition=it.SMB2_FILE_OVERWRITE_IF if write else it.SMB2_FILE_OPEN,
            ),
            it.smb2_create_response(
                4,
                sid,
                tid,
                fid,
                start,
                0 if write else size,
                it.SMB2_FILE_CREATED if write else it.SMB2_FILE_OPENED,
            ),
        ),
    ]
    mid = 5
    data = bytes(w.rng.integers(0, 256, min(size, 65536), dtype=np.uint8))
    for off in range(0, size, 65536):
        piece = data[: min(65536, size - off)]
        if write:
            pairs.append(
                (
                    it.smb2_write_request(mid, sid, tid, fid, piece, off),
                    it.smb2_write_response(mid, sid, tid, len(piece)),
                )
            )
        else:
            pairs.append(
                (
                    it.smb2_read_request(mid, sid, tid, fid, len(piece), off),
                    it.smb2_read_response(mid, sid, tid, piece),
                )
            )
        mid += 1
    pairs += [
        (it.smb2_close_request(mid, sid, tid, fid), it.smb2_close_response(mid, sid, tid)),
        (
            it.smb2_tree_disconnect_request(mid + 1, sid, tid),
            it.smb2_tree_disconnect_response(mid + 1, sid, tid),
        ),
        (it.smb2_logoff_request(mid + 2, sid), it.smb2_logoff_response(mid + 2, sid)),
    ]
    msgs, t = [], 0
    for req, resp in pairs:
        t += int(w.rng.integers(1, 6)) * MS
        msgs.append((t, True, it.nbss(req)))
        t += int(w.rng.integers(1, 4)) * MS
        msgs.append((t, False, it.nbss(resp)))
    return w.session(c, s, 445, start, msgs, label)


def rdp_session(
    w: World, client: str | int, server: str | int, start: int, label: int, user: str
) -> int:
    """RDP: X.224 connection request with the user's cookie, TLS, then a few minutes of
    encrypted screen updates and input."""
    c = w.host(client) if isinstance(client, str) else client
    s = w.host(server) if isinstance(server, str) else server
    rnd = bytes(w.rng.integers(0, 256, 32, dtype=np.uint8))
    msgs = [
        (0, True, it.rdp_connection_request(user)),
        (3 * MS, False, it.rdp_connection_confirm()),
        (6 * MS, True, it.tls_client_hello(rnd, w.hosts.ip(s))),
        (9 * MS, False, it.tls_server_hello(rnd[::-1])),
    ]
    t = 20 * MS
    minutes = int(w.rng.integers(2, 8))
    n = minutes * 60 * 4
    gaps = w.rng.exponential(250 * MS, n).astype(np.int64)
    for k in range(n):
        t += int(gaps[k])
        up = bool(k % 5 == 0)  # input events up, screen updates down
        size = int(w.rng.integers(60, 200) if up else w.rng.integers(200, 1400))
        body = bytes(w.rng.integers(0, 256, size, dtype=np.uint8))
        msgs.append((t, up, it.tls_application_data(body)))
    return w.session(c, s, 3389, start, msgs, label)
