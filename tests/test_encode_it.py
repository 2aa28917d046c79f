"""IT background encoders (DNS, NetBIOS, SMB2, RDP/TLS, HTTP, NTP): one capture of an
operator station's day read back by tshark, with the values encoded; and what otsight's
ICS dissectors make of it (nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from otsight.encode import it as I  # noqa: E741
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode
from tests.encode_capture import Capture, fields, problems

T = 1_700_000_000_000_000_000
WS = ("00:50:56:00:00:21", "10.30.0.21")  # operator station
DNS_SRV = ("00:50:56:00:00:02", "10.30.0.2")
EWS = ("00:50:56:00:00:30", "10.30.0.30")  # engineering workstation
BCAST = ("ff:ff:ff:ff:ff:ff", "10.30.0.255")
SESSION, TREE, FID = 0x0000_4000_0000_0011, 5, bytes(range(16))
COPIED = b"PK\x03\x04" + bytes(500)


# ---- vectors ----------------------------------------------------------------------------------
def test_vectors() -> None:
    h = bytes.fromhex
    assert I.dns_query(0x1234, "plc1.plant.local") == h(
        "12340100000100000000000004706c633105706c616e74056c6f63616c0000010001"
    )
    assert I.netbios_name("WS021", 0x00) == b"\x20FHFDDADCDBCACACACACACACACACACAAA\x00"
    assert I.netbios_name("plant", 0x1D)[-3:] == b"BN\x00"
    assert I.reverse_name("10.30.0.30") == "30.0.30.10.in-addr.arpa"
    assert I.nbss(b"\xfeSMB")[:4] == h("00000004")
    assert len(I.smb2_header(I.SMB2_CREATE, 4)) == 64
    assert I.rdp_connection_confirm() == h("030000130ed00000123400021f080001000000")
    assert I.filetime(0) == 116_444_736_000_000_000
    assert len(I.ntp_client(T)) == len(I.ntp_server(T, T, T, T)) == 48


# ---- one capture --------------------------------------------------------------------------------
def _udp_steps() -> list[tuple[tuple, tuple, bytes, dict[str, str]]]:
    ptr = I.reverse_name(EWS[1])
    return [
        ((*WS, 53001), (*DNS_SRV, 53), I.dns_query(0x1A2B, "historian.plant.local"),
         {"dns.qry.name": "historian.plant.local", "dns.id": "0x1a2b"}),
        ((*DNS_SRV, 53), (*WS, 53001),
         I.dns_response(0x1A2B, "historian.plant.local", I.DNS_A, ["10.30.0.40"]),
         {"dns.a": "10.30.0.40", "dns.flags.rcode": "0", "dns.resp.ttl": "300"}),
        ((*WS, 53002), (*DNS_SRV, 53), I.dns_query(0x1A2C, "historian.plant.local", I.DNS_AAAA),
         {"dns.qry.type": "28"}),
        ((*DNS_SRV, 53), (*WS, 53002), I.dns_response(0x1A2C, "historian.plant.local",
         I.DNS_AAAA, ["fd00::40"], cname="hist01.plant.local"),
         {"dns.cname": "hist01.plant.local", "dns.aaaa": "fd00::40", "dns.count.answers": "2"}),
        ((*WS, 53003), (*DNS_SRV, 53), I.dns_query(0x1A2D, ptr, I.DNS_PTR),
         {"dns.qry.name": "30.0.30.10.in-addr.arpa", "dns.qry.type": "12"}),
        ((*DNS_SRV, 53), (*WS, 53003), I.dns_response(0x1A2D, ptr, I.DNS_PTR,
         ["ews01.plant.local"]), {"dns.ptr.domain_name": "ews01.plant.local"}),
        ((*WS, 53004), (*DNS_SRV, 53), I.dns_query(0x1A2E, "wpad.plant.local"), {}),
        ((*DNS_SRV, 53), (*WS, 53004), I.dns_response(0x1A2E, "wpad.plant.local", I.DNS_A,
         rcode=I.DNS_RCODE_NXDOMAIN), {"dns.flags.rcode": "3", "dns.count.answers": "0"}),
        ((*WS, 137), (*BCAST, 137), I.nbns_query(0x8001, "EWS01", 0x20),
         {"nbns.name": "EWS01<20>", "nbns.flags.broadcast": "1"}),
        ((*EWS, 137), (*WS, 137), I.nbns_query_response(0x8001, "EWS01", EWS[1], 0x20),
         {"nbns.name": "EWS01<20> (Server service)", "nbns.addr": EWS[1]}),
        ((*WS, 137), (*BCAST, 137), I.nbns_registration(0x8002, "WS021", WS[1]),
         {"nbns.flags.opcode": "5", "nbns.addr": WS[1], "nbns.nb_flags.group": "0"}),
        ((*WS, 137), (*BCAST, 137), I.nbns_registration(0x8003, "PLANT", WS[1], group=True),
         {"nbns.nb_flags.group": "1"}),
        ((*WS, 138), (*BCAST, 138), I.browser_host_announcement(0x4242, WS[1], "WS021",
         "PLANT", "Operator station"), {
            "nbdgm.source_name": "WS021<00>", "nbdgm.destination_name": "PLANT<1d>",
            "mailslot.name": "\\MAILSLOT\\BROWSE", "browser.server": "WS021",
            "browser.comment": "Operator station", "browser.os_major": "10"}),
        ((*WS, 123), (*DNS_SRV, 123), I.ntp_client(T), {"ntp.flags.mode": "3"}),
        ((*DNS_SRV, 123), (*WS, 123), I.ntp_server(T, T + 300_000, T + 350_000,
         T - 60 * 10**9, 2, "10.0.0.1"), {"ntp.flags.mode": "4", "ntp.stratum": "2",
         "ntp.refid": "0a000001", "ntp.org": "Nov 14, 2023 22:13:20.000000000 UTC"}),
    ]  # fmt: skip


def _smb_steps() -> list[tuple[bool, bytes, dict[str, str]]]:
    challenge = I.ntlmssp_challenge(b"\x11" * 8, "PLANT", "EWS01", T, "plant.local")
    auth = I.ntlmssp_authenticate("eng.smith", "PLANT", "WS021", b"\x22" * 8, T)
    more = I.NT_STATUS_MORE_PROCESSING_REQUIRED
    return [
        (True, I.smb2_negotiate_request(0, bytes(range(16))),
         {"smb2.cmd": "0", "smb2.dialect": "0x0202,0x0210,0x0300,0x0302"}),
        (False, I.smb2_negotiate_response(0, b"S" * 16, T, T - 86400 * 10**9),
         {"smb2.dialect": "0x0302", "smb2.nt_status": "0x00000000"}),
        (True, I.smb2_session_setup_request(1, I.spnego_init(I.ntlmssp_negotiate())),
         {"smb2.cmd": "1", "ntlmssp.messagetype": "0x00000001"}),
        (False, I.smb2_session_setup_response(1, SESSION, I.spnego_response(1, challenge,
         mech=True), more), {"smb2.nt_status": "0xc0000016",
         "ntlmssp.ntlmserverchallenge": "1111111111111111"}),
        (True, I.smb2_session_setup_request(2, I.spnego_response(1, auth), SESSION), {
            "ntlmssp.auth.username": "eng.smith", "ntlmssp.auth.domain": "PLANT",
            "ntlmssp.auth.hostname": "WS021"}),
        (False, I.smb2_session_setup_response(2, SESSION, I.spnego_response(0)),
         {"smb2.nt_status": "0x00000000", "smb2.sesid": f"0x{SESSION:016x}"}),
        (True, I.smb2_tree_connect_request(3, SESSION, r"\\EWS01\Projects"),
         {"smb2.tree": r"\\EWS01\Projects"}),
        (False, I.smb2_tree_connect_response(3, SESSION, TREE), {"smb2.share_type": "0x01"}),
        (True, I.smb2_create_request(4, SESSION, TREE, r"Line3\PLC_backup.zip"),
         {"smb2.cmd": "5", "smb2.filename": r"Line3\PLC_backup.zip"}),
        (False, I.smb2_create_response(4, SESSION, TREE, FID, T), {"smb2.create.action": "2",
         "smb2.fid": "03020100-0504-0706-0809-0a0b0c0d0e0f"}),
        (True, I.smb2_write_request(5, SESSION, TREE, FID, COPIED),
         {"smb2.cmd": "9", "smb2.write_length": "504", "smb2.file_offset": "0",
          "smb2.acct": "eng.smith", "smb2.host": "WS021"}),
        (False, I.smb2_write_response(5, SESSION, TREE, len(COPIED)), {"smb2.nt_status":
         "0x00000000"}),
        (True, I.smb2_read_request(6, SESSION, TREE, FID, len(COPIED)),
         {"smb2.cmd": "8", "smb2.read_length": "504"}),
        (False, I.smb2_read_response(6, SESSION, TREE, COPIED),
         {"smb2.olb.length": "504", "smb2.read.blob": COPIED.hex()}),
        (True, I.smb2_close_request(7, SESSION, TREE, FID), {"smb2.cmd": "6"}),
        (False, I.smb2_close_response(7, SESSION, TREE), {"smb2.cmd": "6"}),
        (True, I.smb2_create_request(8, SESSION, TREE, "secret.txt",
         disposition=I.SMB2_FILE_OPEN), {"smb2.filename": "secret.txt"}),
        (False, I.smb2_error_response(I.SMB2_CREATE, 8, I.NT_STATUS_ACCESS_DENIED, SESSION,
         TREE), {"smb2.nt_status": "0xc0000022"}),
        (True, I.smb2_tree_disconnect_request(9, SESSION, TREE), {"smb2.cmd": "4"}),
        (False, I.smb2_tree_disconnect_response(9, SESSION, TREE), {"smb2.cmd": "4"}),
        (True, I.smb2_logoff_request(10, SESSION), {"smb2.cmd": "2"}),
        (False, I.smb2_logoff_response(10, SESSION), {"smb2.cmd": "2"}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cap = Capture()
    udp = [(cap.udp(src, dst, payload), want) for src, dst, payload, want in _udp_steps()]
    smb = TcpConversation(*WS, 49801, *EWS, 445, 5000, 9000)
    cap.add(smb.handshake())
    smb_frames = [(cap.tcp(smb, c, pdu), want) for c, pdu, want in _smb_steps()]
    cap.add(smb.close())

    rdp = TcpConversation(*WS, 49802, *EWS, 3389, 100, 200)
    cap.add(rdp.handshake())
    rdp_cr = cap.tcp(rdp, True, I.rdp_connection_request("eng.smith"))
    rdp_cc = cap.tcp(rdp, False, I.rdp_connection_confirm())
    rdp_tls = [
        cap.tcp(rdp, True, I.tls_client_hello(b"\x01" * 32, "EWS01.plant.local", b"\x02" * 32)),
        cap.tcp(
            rdp,
            False,
            I.tls_server_hello(b"\x03" * 32, session_id=b"\x02" * 32)
            + I.tls_change_cipher_spec()
            + I.tls_application_data(bytes(300)),
        ),
        cap.tcp(rdp, True, I.tls_change_cipher_spec() + I.tls_application_data(bytes(80))),
        cap.tcp(rdp, False, I.tls_application_data(bytes(1200))),
    ]
    https = TcpConversation(*WS, 49803, "00:50:56:00:00:01", "10.30.0.1", 443, 7, 8)
    cap.add(https.handshake())
    tls12 = [
        cap.tcp(https, True, I.tls_client_hello(b"\x04" * 32, "update.vendor.example")),
        cap.tcp(
            https,
            False,
            I.tls_server_hello(b"\x05" * 32, I.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls13=False),
        ),
    ]
    web = TcpConversation(*WS, 49804, *EWS, 80, 1, 2)
    cap.add(web.handshake())
    get = cap.tcp(web, True, I.http_request("ews01.plant.local", "/reports/today.html"))
    ok = cap.tcp(web, False, I.http_response(200, b"<html><body>ok</body></html>"))
    cap.add(web.close())
    path = cap.write(tmp_path_factory.mktemp("it") / "it.pcap")
    return {
        "path": path,
        "udp": udp,
        "smb": smb_frames,
        "rdp": (rdp_cr, rdp_cc, rdp_tls),
        "tls12": tls12,
        "http": (get, ok),
    }


def _check(got: dict[int, dict[str, str]], frames: list[tuple[int, dict[str, str]]]) -> None:
    for frame, want in frames:
        for name, value in want.items():
            assert got[frame][name] == value, (frame, name, got[frame][name])


def test_tshark_decodes_udp_services(capture, tshark) -> None:
    path = capture["path"]
    assert problems(tshark, path) == ""
    names = sorted({n for _, want in capture["udp"] for n in want})
    got = fields(tshark, path, ["frame.protocols", *names])
    protos = ["dns"] * 8 + ["nbns"] * 4 + ["browser", "ntp", "ntp"]
    for (frame, _), proto in zip(capture["udp"], protos, strict=True):
        assert got[frame]["frame.protocols"].endswith(proto), frame
    _check(got, capture["udp"])


def test_tshark_decodes_smb2_file_copy(capture, tshark) -> None:
    names = sorted({n for _, want in capture["smb"] for n in want})
    got = fields(tshark, capture["path"], ["frame.protocols", *names], dfilter="smb2")
    assert [f for f, _ in capture["smb"]] == sorted(got)
    for frame, _ in capture["smb"]:
        assert got[frame]["frame.protocols"].startswith("eth:ethertype:ip:tcp:nbss:smb2")
    _check(got, capture["smb"])
    info = fields(tshark, capture["path"], ["_ws.col.Info"], dfilter="smb2.cmd == 9")
    assert "File: Line3\\PLC_backup.zip" in next(iter(info.values()))["_ws.col.Info"]


def test_tshark_decodes_rdp_and_tls(capture, tshark) -> None:
    path = capture["path"]
    cr, cc, tls = capture["rdp"]
    got = fields(
        tshark,
        path,
        ["frame.protocols", "rdp.rt_cookie", "rdp.negReq.requestedProtocols",
         "rdp.negReq.selectedProtocol"],
    )  # fmt: skip
    assert got[cr]["frame.protocols"].endswith("tcp:cotp:rdp")
    assert got[cr]["rdp.rt_cookie"] == "Cookie: mstshash=eng.smith"
    assert got[cr]["rdp.negReq.requestedProtocols"] == "0x00000003"
    assert got[cc]["rdp.negReq.selectedProtocol"] == "0x00000001"
    # Wireshark 4.0 binds TCP 3389 to TPKT and does not switch to TLS after the negotiation
    # (the records show as "TPKT Continuation"); decoded as TLS they are clean TLS 1.3.
    as_tls = ("-d", "tcp.port==3389,tls")
    assert problems(tshark, path, *as_tls) == ""
    names = ["tls.handshake.type", "tls.handshake.extensions_server_name",
             "tls.handshake.ciphersuite", "tls.record.content_type",
             "tls.handshake.extensions.supported_version", "tls.record.opaque_type"]  # fmt: skip
    got = fields(tshark, path, names, *as_tls, dfilter="tls")
    hello, server, client_ccs, data = (got[f] for f in tls)
    assert hello["tls.handshake.type"] == "1"
    assert hello["tls.handshake.extensions_server_name"] == "EWS01.plant.local"
    assert hello["tls.handshake.extensions.supported_version"] == "0x0304,0x0303"
    assert server["tls.handshake.type"] == "2" and server["tls.handshake.ciphersuite"] == "0x1302"
    # TLS 1.3 protected records carry their type as the "opaque type"
    assert (server["tls.record.content_type"], server["tls.record.opaque_type"]) == ("22,20", "23")
    assert (client_ccs["tls.record.content_type"], client_ccs["tls.record.opaque_type"]) == (
        "20",
        "23",
    )
    assert data["tls.record.opaque_type"] == "23"
    # TLS 1.2 on 443 is decoded as such without help
    got = fields(tshark, path, names, dfilter="tcp.port == 443")
    hello, server = (got[f] for f in capture["tls12"])
    assert hello["tls.handshake.extensions_server_name"] == "update.vendor.example"
    assert server["tls.handshake.ciphersuite"] == "0xc030"


def test_tshark_decodes_http(capture, tshark) -> None:
    get, ok = capture["http"]
    names = ["http.request.method", "http.request.uri", "http.host", "http.response.code",
             "http.server", "http.content_length"]  # fmt: skip
    got = fields(tshark, capture["path"], names, dfilter="http")
    assert got[get]["http.request.method"] == "GET"
    assert got[get]["http.request.uri"] == "/reports/today.html"
    assert got[get]["http.host"] == "ews01.plant.local"
    assert got[ok]["http.response.code"] == "200"
    assert got[ok]["http.server"] == "Microsoft-IIS/10.0"
    assert got[ok]["http.content_length"] == "28"


ICS_TABLES = ("s7comm", "s7comm_plus", "enip", "cip", "enip_io", "modbus", "dnp3", "iec104")


def test_otsight_finds_no_ics_in_it_traffic(capture) -> None:
    d = decode(capture["path"])
    assert not d.failures
    for table in ICS_TABLES:
        assert d.tables[table].num_rows == 0, table
    assert d.tables["weird"].num_rows == 0, d.tables["weird"].to_pylist()
