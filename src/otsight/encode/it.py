"""Application payloads of ordinary IT traffic, the background of a plant network.

Every function returns the bytes of one UDP datagram payload or one TCP message; wrap them
with :mod:`otsight.encode.packets` / :class:`~otsight.encode.tcp_session.TcpConversation`:

* DNS (UDP 53): queries and answers for A, AAAA, PTR (and CNAME) records.
* NetBIOS (RFC 1001/1002): name service on UDP 137 (query, answer, registration) with
  first-level encoded names, and the datagram service on UDP 138 carrying a browser Host
  Announcement (SMB mailslot ``\\MAILSLOT\\BROWSE``).
* SMB2 over TCP 445 (NetBIOS session header + SMB2): NEGOTIATE, SESSION_SETUP with
  SPNEGO-wrapped NTLMSSP (negotiate / challenge / authenticate), TREE_CONNECT, CREATE,
  WRITE, READ, CLOSE, TREE_DISCONNECT, LOGOFF -- enough to show a file copy with its file
  name, user and share. The NTLM values are structurally right but not cryptographic.
* RDP on TCP 3389: X.224 Connection Request with the ``mstshash`` cookie and the RDP
  negotiation request, Connection Confirm selecting TLS; then TLS records (ClientHello with
  SNI, ServerHello, ChangeCipherSpec, opaque application data). Wireshark 4.0 keeps TCP
  3389 on TPKT and shows those records as "TPKT Continuation" unless decoded as TLS.
* HTTP/1.1 requests and responses, NTP (UDP 123) client and server packets.

Times are integer nanoseconds since the Unix epoch, as everywhere in :mod:`otsight.encode`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping, Sequence

__all__ = [
    "DNS_A",
    "DNS_AAAA",
    "DNS_CNAME",
    "DNS_PTR",
    "DNS_RCODE_NXDOMAIN",
    "NTLMSSP_NEGOTIATE_FLAGS",
    "NT_STATUS_ACCESS_DENIED",
    "NT_STATUS_LOGON_FAILURE",
    "NT_STATUS_MORE_PROCESSING_REQUIRED",
    "NT_STATUS_SUCCESS",
    "RDP_PROTOCOL_HYBRID",
    "RDP_PROTOCOL_RDP",
    "RDP_PROTOCOL_SSL",
    "SMB2_CLOSE",
    "SMB2_CREATE",
    "SMB2_FILE_CREATED",
    "SMB2_FILE_OPENED",
    "SMB2_FILE_OVERWRITE_IF",
    "SMB2_FILE_OPEN",
    "SMB2_LOGOFF",
    "SMB2_NEGOTIATE",
    "SMB2_READ",
    "SMB2_SESSION_SETUP",
    "SMB2_TREE_CONNECT",
    "SMB2_TREE_DISCONNECT",
    "SMB2_WRITE",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "browser_host_announcement",
    "dns_query",
    "dns_response",
    "filetime",
    "http_request",
    "http_response",
    "nbns_query",
    "nbns_query_response",
    "nbns_registration",
    "nbss",
    "netbios_name",
    "ntlmssp_authenticate",
    "ntlmssp_challenge",
    "ntlmssp_negotiate",
    "ntp_client",
    "ntp_server",
    "rdp_connection_confirm",
    "rdp_connection_request",
    "reverse_name",
    "smb2_close_request",
    "smb2_close_response",
    "smb2_create_request",
    "smb2_create_response",
    "smb2_error_response",
    "smb2_header",
    "smb2_logoff_request",
    "smb2_logoff_response",
    "smb2_negotiate_request",
    "smb2_negotiate_response",
    "smb2_read_request",
    "smb2_read_response",
    "smb2_session_setup_request",
    "smb2_session_setup_response",
    "smb2_tree_connect_request",
    "smb2_tree_connect_response",
    "smb2_tree_disconnect_request",
    "smb2_tree_disconnect_response",
    "smb2_write_request",
    "smb2_write_response",
    "spnego_init",
    "spnego_response",
    "tls_application_data",
    "tls_change_cipher_spec",
    "tls_client_hello",
    "tls_record",
    "tls_server_hello",
]

# ---- DNS -------------------------------------------------------------------------------------
DNS_A = 1
DNS_CNAME = 5
DNS_PTR = 12
DNS_AAAA = 28
DNS_RCODE_NXDOMAIN = 3
_CLASS_IN = 1


def _labels(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def reverse_name(ip: str) -> str:
    """The PTR query name of an address: ``10.0.0.1`` → ``1.0.0.10.in-addr.arpa``."""
    return ipaddress.ip_address(ip).reverse_pointer


def dns_query(txid: int, name: str, qtype: int = DNS_A, recursion_desired: bool = True) -> bytes:
    """A standard DNS query for one name."""
    flags = 0x0100 if recursion_desired else 0
    return (
        struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0)
        + _labels(name)
        + struct.pack("!HH", qtype, _CLASS_IN)
    )


def _rdata(rtype: int, value: str) -> bytes:
    if rtype == DNS_A:
        return ipaddress.IPv4Address(value).packed
    if rtype == DNS_AAAA:
        return ipaddress.IPv6Address(value).packed
    if rtype in (DNS_PTR, DNS_CNAME):
        return _labels(value)
    raise ValueError(f"unsupported record type {rtype}")


def dns_response(
    txid: int,
    name: str,
    qtype: int,
    answers: Sequence[str] = (),
    ttl: int = 300,
    rcode: int = 0,
    authoritative: bool = False,
    cname: str | None = None,
) -> bytes:
    """The answer to :func:`dns_query`: the question again, then one record per answer
    (addresses for A / AAAA, names for PTR). With ``cname`` the first record aliases the
    query name to it and the answers belong to the alias. ``rcode`` 3 is NXDOMAIN."""
    flags = 0x8180 | (0x0400 if authoritative else 0) | (rcode & 0xF)
    records = []
    owner = b"\xc0\x0c"  # pointer to the question name
    if cname is not None:
        target = _labels(cname)
        records.append(
            owner + struct.pack("!HHIH", DNS_CNAME, _CLASS_IN, ttl, len(target)) + target
        )
        owner = target
    for value in answers:
        data = _rdata(qtype, value)
        records.append(owner + struct.pack("!HHIH", qtype, _CLASS_IN, ttl, len(data)) + data)
    return (
        struct.pack("!HHHHHH", txid, flags, 1, len(records), 0, 0)
        + _labels(name)
        + struct.pack("!HH", qtype, _CLASS_IN)
        + b"".join(records)
    )


# ---- NetBIOS ---------------------------------------------------------------------------------
_NB = 0x0020


def netbios_name(name: str, suffix: int = 0x00, scope: str = "") -> bytes:
    """First-level encoded NetBIOS name (RFC 1001 14.1): 15 characters upper-cased and
    space padded plus the suffix byte, each nibble as 'A' + value; length-prefixed label
    (0x20) and the optional scope, then the root label."""
    raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    half = bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0xF)))
    tail = _labels(scope) if scope else b"\x00"
    return b"\x20" + half + tail


def nbns_query(txid: int, name: str, suffix: int = 0x00, broadcast: bool = True) -> bytes:
    """Name query request (NB record), broadcast as Windows does before DNS fails over."""
    flags = 0x0100 | (0x0010 if broadcast else 0)
    return (
        struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0)
        + netbios_name(name, suffix)
        + struct.pack("!HH", _NB, _CLASS_IN)
    )


def _nb_record(name: bytes, ip: str, ttl: int, group: bool) -> bytes:
    nb_flags = 0x8000 if group else 0x0000  # B-node
    data = struct.pack("!H", nb_flags) + ipaddress.IPv4Address(ip).packed
    return name + struct.pack("!HHIH", _NB, _CLASS_IN, ttl, len(data)) + data


def nbns_query_response(
    txid: int, name: str, ip: str, suffix: int = 0x00, ttl: int = 300_000, group: bool = False
) -> bytes:
    """Positive name query response (authoritative) with the owner's address."""
    return struct.pack("!HHHHHH", txid, 0x8500, 0, 1, 0, 0) + _nb_record(
        netbios_name(name, suffix), ip, ttl, group
    )


def nbns_registration(
    txid: int, name: str, ip: str, suffix: int = 0x00, ttl: int = 300_000, group: bool = False
) -> bytes:
    """Name registration request (opcode 5, broadcast): the question and an additional
    NB record pointing back at it with the registrant's address."""
    return (
        struct.pack("!HHHHHH", txid, 0x2910, 1, 0, 0, 1)
        + netbios_name(name, suffix)
        + struct.pack("!HH", _NB, _CLASS_IN)
        + _nb_record(b"\xc0\x0c", ip, ttl, group)
    )


def browser_host_announcement(
    datagram_id: int,
    src_ip: str,
    host: str,
    workgroup: str = "WORKGROUP",
    comment: str = "",
    os_version: tuple[int, int] = (10, 0),
    server_type: int = 0x00001003,
    periodicity_ms: int = 720_000,
    update_count: int = 0,
) -> bytes:
    """NetBIOS datagram (UDP 138, direct group) from ``host``<00> to ``workgroup``<1D>
    carrying an SMB Transaction mailslot write of a browser Host Announcement.

    ``server_type`` 0x1003 is workstation + server + NT workstation (a Windows client).
    """
    name = b"\\MAILSLOT\\BROWSE\x00"
    announce = (
        struct.pack("<BBI", 0x01, update_count, periodicity_ms)
        + host.upper().encode("ascii")[:15].ljust(16, b"\x00")
        + struct.pack("<BBIBBH", os_version[0], os_version[1], server_type, 15, 1, 0xAA55)
        + comment.encode("ascii")
        + b"\x00"
    )
    smb_header = b"\xffSMB" + struct.pack(
        "<BIBHH8sHHHHH", 0x25, 0, 0, 0, 0, bytes(8), 0, 0, 0, 0, 0
    )
    data_offset = len(smb_header) + 1 + 34 + 2 + len(name)
    words = struct.pack(
        "<HHHHBBHIHHHHHBB3H",
        0,  # total parameter count
        len(announce),  # total data count
        0,  # max parameter count
        0,  # max data count
        0,  # max setup count
        0,
        0,  # flags
        0,  # timeout
        0,
        0,  # parameter count
        data_offset,  # parameter offset
        len(announce),  # data count
        data_offset,
        3,  # setup count
        0,
        1,  # mailslot write
        1,  # priority
        2,  # class 2: unreliable, broadcast
    )
    smb = (
        smb_header
        + bytes([len(words) // 2])
        + words
        + struct.pack("<H", len(name) + len(announce))
        + name
        + announce
    )
    body = netbios_name(host, 0x00) + netbios_name(workgroup, 0x1D) + smb
    return (
        struct.pack("!BBH", 0x11, 0x02, datagram_id)
        + ipaddress.IPv4Address(src_ip).packed
        + struct.pack("!HHH", 138, len(body), 0)
        + body
    )


# ---- SMB2 ------------------------------------------------------------------------------------
SMB2_NEGOTIATE = 0x0000
SMB2_SESSION_SETUP = 0x0001
SMB2_LOGOFF = 0x0002
SMB2_TREE_CONNECT = 0x0003
SMB2_TREE_DISCONNECT = 0x0004
SMB2_CREATE = 0x0005
SMB2_CLOSE = 0x0006
SMB2_READ = 0x0008
SMB2_WRITE = 0x0009

NT_STATUS_SUCCESS = 0x00000000
NT_STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
NT_STATUS_ACCESS_DENIED = 0xC0000022
NT_STATUS_LOGON_FAILURE = 0xC000006D

SMB2_FILE_OPEN = 1  # create dispositions
SMB2_FILE_OVERWRITE_IF = 5
SMB2_FILE_OPENED = 1  # create actions
SMB2_FILE_CREATED = 2

_SMB2_FLAGS_RESPONSE = 0x00000001
_DIALECTS = (0x0202, 0x0210, 0x0300, 0x0302)
_EPOCH_AS_FILETIME = 116_444_736_000_000_000


def filetime(ts_ns: int) -> int:
    """Windows FILETIME (100 ns since 1601-01-01) of a Unix time in nanoseconds."""
    return _EPOCH_AS_FILETIME + ts_ns // 100


def nbss(message: bytes) -> bytes:
    """NetBIOS session service header (type 0, 24-bit length) as SMB over TCP 445 uses."""
    if len(message) >= 1 << 24:
        raise ValueError("message too long for a session message")
    return struct.pack("!I", len(message)) + message


def smb2_header(
    command: int,
    message_id: int,
    session_id: int = 0,
    tree_id: int = 0,
    status: int = NT_STATUS_SUCCESS,
    response: bool = False,
    credits: int = 1,
    credit_charge: int = 1,
    process_id: int = 0xFEFF,
) -> bytes:
    """The 64-byte SMB2 sync header (unsigned)."""
    flags = _SMB2_FLAGS_RESPONSE if response else 0
    return b"\xfeSMB" + struct.pack(
        "<HHIHHIIQIIQ16s",
        64,
        credit_charge,
        status,
        command,
        credits,
        flags,
        0,
        message_id,
        process_id,
        tree_id,
        session_id,
        bytes(16),
    )


def _smb2(
    command: int,
    message_id: int,
    body: bytes,
    session_id: int = 0,
    tree_id: int = 0,
    status: int = NT_STATUS_SUCCESS,
    response: bool = False,
    credits: int = 1,
) -> bytes:
    header = smb2_header(command, message_id, session_id, tree_id, status, response, credits)
    return nbss(header + body)


def smb2_negotiate_request(
    message_id: int, client_guid: bytes, dialects: Sequence[int] = _DIALECTS
) -> bytes:
    """NEGOTIATE request offering SMB 2.0.2 - 3.0.2 (no 3.1.1 negotiate contexts);
    signing enabled, not required."""
    body = struct.pack("<HHHHI16sQ", 36, len(dialects), 0x0001, 0, 0x7F, client_guid, 0)
    body += struct.pack(f"<{len(dialects)}H", *dialects)
    return _smb2(SMB2_NEGOTIATE, message_id, body, credits=0)


def smb2_negotiate_response(
    message_id: int,
    server_guid: bytes,
    system_time_ns: int,
    boot_time_ns: int,
    dialect: int = 0x0302,
    security_blob: bytes | None = None,
) -> bytes:
    """NEGOTIATE response choosing ``dialect``, with the server's SPNEGO hint (NTLMSSP)."""
    blob = spnego_init() if security_blob is None else security_blob
    body = struct.pack(
        "<HHHH16sIIIIQQHHI",
        65,
        0x0001,
        dialect,
        0,
        server_guid,
        0x2F,  # DFS, leasing, large MTU, multi-channel, persistent handles
        8 << 20,
        8 << 20,
        8 << 20,
        filetime(system_time_ns),
        filetime(boot_time_ns),
        64 + 64,
        len(blob),
        0,
    )
    return _smb2(SMB2_NEGOTIATE, message_id, body + blob, response=True)


def smb2_session_setup_request(message_id: int, security_blob: bytes, session_id: int = 0) -> bytes:
    """SESSION_SETUP request carrying a SPNEGO / NTLMSSP token."""
    body = struct.pack("<HBBIIHHQ", 25, 0, 0x01, 0x01, 0, 64 + 24, len(security_blob), 0)
    return _smb2(SMB2_SESSION_SETUP, message_id, body + security_blob, session_id, credits=33)


def smb2_session_setup_response(
    message_id: int,
    session_id: int,
    security_blob: bytes = b"",
    status: int = NT_STATUS_SUCCESS,
    session_flags: int = 0,
) -> bytes:
    """SESSION_SETUP response: MORE_PROCESSING_REQUIRED with the NTLM challenge, then
    SUCCESS (or LOGON_FAILURE)."""
    body = struct.pack("<HHHH", 9, session_flags, 64 + 8, len(security_blob))
    return _smb2(
        SMB2_SESSION_SETUP,
        message_id,
        body + security_blob,
        session_id,
        status=status,
        response=True,
    )


def smb2_tree_connect_request(message_id: int, session_id: int, path: str) -> bytes:
    """TREE_CONNECT to ``\\\\server\\share`` (UTF-16LE path)."""
    raw = path.encode("utf-16-le")
    body = struct.pack("<HHHH", 9, 0, 64 + 8, len(raw)) + raw
    return _smb2(SMB2_TREE_CONNECT, message_id, body, session_id)


def smb2_tree_connect_response(
    message_id: int,
    session_id: int,
    tree_id: int,
    share_type: int = 0x01,
    maximal_access: int = 0x001F01FF,
    status: int = NT_STATUS_SUCCESS,
) -> bytes:
    """TREE_CONNECT response: the tree id; share type 1 disk, 2 pipe, 3 printer."""
    if status:
        return smb2_error_response(SMB2_TREE_CONNECT, message_id, status, session_id)
    body = struct.pack("<HBBIII", 16, share_type, 0, 0, 0, maximal_access)
    return _smb2(SMB2_TREE_CONNECT, message_id, body, session_id, tree_id, response=True)


def smb2_create_request(
    message_id: int,
    session_id: int,
    tree_id: int,
    filename: str,
    desired_access: int = 0x0012019F,
    disposition: int = SMB2_FILE_OVERWRITE_IF,
    create_options: int = 0x00000044,
    file_attributes: int = 0x00000080,
) -> bytes:
    """CREATE (open) of ``filename`` relative to the share (no leading backslash); the
    defaults open a file for writing, creating or replacing it (as a copy does)."""
    raw = filename.encode("utf-16-le")
    body = struct.pack(
        "<HBBIQQIIIIIHHII",
        57,
        0,
        0,
        2,  # impersonation
        0,
        0,
        desired_access,
        file_attributes,
        0x00000007,  # share read / write / delete
        disposition,
        create_options,
        64 + 56,
        len(raw),
        0,
        0,
    )
    return _smb2(SMB2_CREATE, message_id, body + (raw or b"\x00"), session_id, tree_id)


def smb2_create_response(
    message_id: int,
    session_id: int,
    tree_id: int,
    file_id: bytes,
    ts_ns: int,
    end_of_file: int = 0,
    create_action: int = SMB2_FILE_CREATED,
    file_attributes: int = 0x00000080,
) -> bytes:
    """CREATE response with the 16-byte file id (persistent + volatile)."""
    ft = filetime(ts_ns)
    body = struct.pack(
        "<HBBIQQQQQQII16sII",
        89,
        0,
        0,
        create_action,
        ft,
        ft,
        ft,
        ft,
        (end_of_file + 4095) // 4096 * 4096,
        end_of_file,
        file_attributes,
        0,
        file_id,
        0,
        0,
    )
    return _smb2(SMB2_CREATE, message_id, body, session_id, tree_id, response=True)


def smb2_write_request(
    message_id: int, session_id: int, tree_id: int, file_id: bytes, data: bytes, offset: int = 0
) -> bytes:
    """WRITE of ``data`` at ``offset``."""
    body = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), offset, file_id, 0, 0, 0, 0, 0)
    return _smb2(SMB2_WRITE, message_id, body + data, session_id, tree_id)


def smb2_write_response(message_id: int, session_id: int, tree_id: int, count: int) -> bytes:
    """WRITE response: bytes written."""
    body = struct.pack("<HHIIHH", 17, 0, count, 0, 0, 0)
    return _smb2(SMB2_WRITE, message_id, body, session_id, tree_id, response=True)


def smb2_read_request(
    message_id: int, session_id: int, tree_id: int, file_id: bytes, length: int, offset: int = 0
) -> bytes:
    """READ of ``length`` bytes at ``offset``."""
    body = struct.pack("<HBBIQ16sIIIHHB", 49, 0x50, 0, length, offset, file_id, 0, 0, 0, 0, 0, 0)
    return _smb2(SMB2_READ, message_id, body, session_id, tree_id)


def smb2_read_response(message_id: int, session_id: int, tree_id: int, data: bytes) -> bytes:
    """READ response carrying the data."""
    body = struct.pack("<HBBIII", 17, 64 + 16, 0, len(data), 0, 0)
    return _smb2(SMB2_READ, message_id, body + data, session_id, tree_id, response=True)


def smb2_close_request(message_id: int, session_id: int, tree_id: int, file_id: bytes) -> bytes:
    """CLOSE of a file id."""
    body = struct.pack("<HHI16s", 24, 0, 0, file_id)
    return _smb2(SMB2_CLOSE, message_id, body, session_id, tree_id)


def smb2_close_response(message_id: int, session_id: int, tree_id: int) -> bytes:
    """CLOSE response (no attributes returned)."""
    body = struct.pack("<HHI", 60, 0, 0) + bytes(52)
    return _smb2(SMB2_CLOSE, message_id, body, session_id, tree_id, response=True)


def smb2_tree_disconnect_request(message_id: int, session_id: int, tree_id: int) -> bytes:
    """TREE_DISCONNECT request."""
    return _smb2(SMB2_TREE_DISCONNECT, message_id, struct.pack("<HH", 4, 0), session_id, tree_id)


def smb2_tree_disconnect_response(message_id: int, session_id: int, tree_id: int) -> bytes:
    """TREE_DISCONNECT response."""
    body = struct.pack("<HH", 4, 0)
    return _smb2(SMB2_TREE_DISCONNECT, message_id, body, session_id, tree_id, response=True)


def smb2_logoff_request(message_id: int, session_id: int) -> bytes:
    """LOGOFF request."""
    return _smb2(SMB2_LOGOFF, message_id, struct.pack("<HH", 4, 0), session_id)


def smb2_logoff_response(message_id: int, session_id: int) -> bytes:
    """LOGOFF response."""
    return _smb2(SMB2_LOGOFF, message_id, struct.pack("<HH", 4, 0), session_id, response=True)


def smb2_error_response(
    command: int, message_id: int, status: int, session_id: int = 0, tree_id: int = 0
) -> bytes:
    """Error response to any command (e.g. ACCESS_DENIED on CREATE)."""
    body = struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"
    return _smb2(command, message_id, body, session_id, tree_id, status, response=True)


# ---- SPNEGO / NTLMSSP ------------------------------------------------------------------------
_SPNEGO_OID = bytes.fromhex("2b0601050502")
_NTLMSSP_OID = bytes.fromhex("2b06010401823702020a")
NTLMSSP_NEGOTIATE_FLAGS = 0xE2088297


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + struct.pack("!H", n)
    return bytes([tag]) + length + content


def spnego_init(mech_token: bytes | None = None) -> bytes:
    """GSS-API / SPNEGO NegTokenInit offering NTLMSSP, optionally with its first token."""
    fields = _der(0xA0, _der(0x30, _der(0x06, _NTLMSSP_OID)))
    if mech_token is not None:
        fields += _der(0xA2, _der(0x04, mech_token))
    return _der(0x60, _der(0x06, _SPNEGO_OID) + _der(0xA0, _der(0x30, fields)))


def spnego_response(state: int, token: bytes | None = None, mech: bool = False) -> bytes:
    """SPNEGO NegTokenResp: state 0 accept-completed, 1 accept-incomplete, 2 reject; the
    NTLMSSP ``token``; ``mech`` names NTLMSSP as the supported mechanism (first reply)."""
    fields = _der(0xA0, _der(0x0A, bytes([state])))
    if mech:
        fields += _der(0xA1, _der(0x06, _NTLMSSP_OID))
    if token is not None:
        fields += _der(0xA2, _der(0x04, token))
    return _der(0xA1, _der(0x30, fields))


_NTLM_VERSION = struct.pack("<BBHBBBB", 10, 0, 19041, 0, 0, 0, 15)  # Windows 10, NTLM rev 15


def ntlmssp_negotiate(flags: int = NTLMSSP_NEGOTIATE_FLAGS) -> bytes:
    """NTLMSSP NEGOTIATE_MESSAGE (type 1) without domain / workstation names."""
    return b"NTLMSSP\x00" + struct.pack("<II8s8s", 1, flags, bytes(8), bytes(8)) + _NTLM_VERSION


def _u16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _av_pairs(domain: str, computer: str, dns_domain: str, timestamp: int) -> bytes:
    pairs = [
        (2, _u16(domain)),
        (1, _u16(computer)),
        (4, _u16(dns_domain)),
        (3, _u16(f"{computer.lower()}.{dns_domain}" if dns_domain else computer)),
        (7, struct.pack("<Q", timestamp)),
    ]
    return b"".join(struct.pack("<HH", t, len(v)) + v for t, v in pairs) + bytes(4)


def ntlmssp_challenge(
    server_challenge: bytes,
    domain: str,
    computer: str,
    ts_ns: int,
    dns_domain: str = "",
    flags: int = 0xE28A8215,
) -> bytes:
    """NTLMSSP CHALLENGE_MESSAGE (type 2): target name, 8-byte server challenge, target
    info (NetBIOS / DNS domain and computer names, timestamp)."""
    target = _u16(domain)
    info = _av_pairs(domain, computer, dns_domain, filetime(ts_ns))
    head = 56
    return (
        b"NTLMSSP\x00"
        + struct.pack("<IHHI", 2, len(target), len(target), head)
        + struct.pack("<I8s8s", flags, server_challenge, bytes(8))
        + struct.pack("<HHI", len(info), len(info), head + len(target))
        + _NTLM_VERSION
        + target
        + info
    )


def ntlmssp_authenticate(
    user: str,
    domain: str,
    workstation: str,
    client_challenge: bytes,
    ts_ns: int,
    nt_proof: bytes = bytes(16),
    session_key: bytes = bytes(16),
    flags: int = 0xE2888215,
) -> bytes:
    """NTLMSSP AUTHENTICATE_MESSAGE (type 3) with an NTLMv2 response shape (proof string,
    blob with timestamp, client challenge and target info); the proofs are not computed."""
    blob = (
        struct.pack("<BBHIQ8sI", 1, 1, 0, 0, filetime(ts_ns), client_challenge, 0)
        + _av_pairs(domain, workstation, "", filetime(ts_ns))
        + bytes(4)
    )
    # payload in the order Windows writes it; the field headers go LM, NT, domain, user,
    # workstation, session key
    parts = {
        "domain": _u16(domain),
        "user": _u16(user),
        "host": _u16(workstation),
        "lm": bytes(24),
        "nt": nt_proof + blob,
        "key": session_key,
    }
    offset, pos = {}, 88
    for name, part in parts.items():
        offset[name] = pos
        pos += len(part)
    fields = b"".join(
        struct.pack("<HHI", len(parts[n]), len(parts[n]), offset[n])
        for n in ("lm", "nt", "domain", "user", "host", "key")
    )
    payload = list(parts.values())
    return (
        b"NTLMSSP\x00"
        + struct.pack("<I", 3)
        + fields
        + struct.pack("<I", flags)
        + _NTLM_VERSION
        + bytes(16)  # MIC
        + b"".join(payload)
    )


# ---- RDP -------------------------------------------------------------------------------------
RDP_PROTOCOL_RDP = 0x00000000
RDP_PROTOCOL_SSL = 0x00000001
RDP_PROTOCOL_HYBRID = 0x00000002


def _tpkt(payload: bytes) -> bytes:
    return struct.pack("!BBH", 3, 0, 4 + len(payload)) + payload


def rdp_connection_request(
    user: str, requested_protocols: int = RDP_PROTOCOL_SSL | RDP_PROTOCOL_HYBRID
) -> bytes:
    """TPKT + X.224 Connection Request with the ``Cookie: mstshash=<user>`` routing token
    and an RDP Negotiation Request listing the security protocols the client supports."""
    cookie = f"Cookie: mstshash={user}\r\n".encode("ascii")
    neg = struct.pack("<BBHI", 0x01, 0, 8, requested_protocols)
    head = struct.pack("!BHHB", 0xE0, 0, 0, 0) + cookie + neg
    return _tpkt(bytes([len(head)]) + head)


def rdp_connection_confirm(
    selected_protocol: int = RDP_PROTOCOL_SSL, src_ref: int = 0x1234, flags: int = 0x1F
) -> bytes:
    """TPKT + X.224 Connection Confirm with the RDP Negotiation Response selecting
    ``selected_protocol`` (flags: extended client data, GFX, restricted admin...)."""
    neg = struct.pack("<BBHI", 0x02, flags, 8, selected_protocol)
    head = struct.pack("!BHHB", 0xD0, 0, src_ref, 0) + neg
    return _tpkt(bytes([len(head)]) + head)


# ---- TLS -------------------------------------------------------------------------------------
TLS_AES_128_GCM_SHA256 = 0x1301
TLS_AES_256_GCM_SHA384 = 0x1302
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
_CLIENT_SUITES = (0x1302, 0x1301, 0xC02C, 0xC02B, 0xC030, 0xC02F, 0xC024, 0xC023, 0x009D, 0x009C)
_SIG_ALGS = (0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603)
_X25519 = 0x001D


def tls_record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    """One TLS record (22 handshake, 20 change cipher spec, 23 application data)."""
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def tls_client_hello(
    random: bytes,
    server_name: str | None = None,
    session_id: bytes = b"",
    key_share: bytes = bytes(32),
    cipher_suites: Sequence[int] = _CLIENT_SUITES,
) -> bytes:
    """TLS record with a ClientHello (legacy version 1.2, offering 1.3): SNI when given,
    groups, signature algorithms, extended master secret, an X25519 key share."""
    exts = b""
    if server_name is not None:
        host = server_name.encode("ascii")
        exts += _ext(0x0000, struct.pack("!HBH", len(host) + 3, 0, len(host)) + host)
    groups = struct.pack("!4H", _X25519, 0x0017, 0x0018, 0x0019)
    sigs = struct.pack(f"!{len(_SIG_ALGS)}H", *_SIG_ALGS)
    exts += (
        _ext(0x000A, struct.pack("!H", len(groups)) + groups)
        + _ext(0x000B, b"\x01\x00")
        + _ext(0x000D, struct.pack("!H", len(sigs)) + sigs)
        + _ext(0x0017, b"")
        + _ext(0xFF01, b"\x00")
        + _ext(0x002B, b"\x04\x03\x04\x03\x03")
        + _ext(0x0033, struct.pack("!HHH", len(key_share) + 4, _X25519, len(key_share)) + key_share)
    )
    suites = struct.pack(f"!H{len(cipher_suites)}H", 2 * len(cipher_suites), *cipher_suites)
    body = (
        struct.pack("!H32sB", 0x0303, random, len(session_id))
        + session_id
        + suites
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    return tls_record(22, _handshake(1, body), version=0x0301)


def tls_server_hello(
    random: bytes,
    cipher_suite: int = TLS_AES_256_GCM_SHA384,
    session_id: bytes = b"",
    key_share: bytes = bytes(32),
    tls13: bool = True,
) -> bytes:
    """TLS record with a ServerHello: TLS 1.3 (supported_versions + X25519 key share) or
    TLS 1.2 (renegotiation info, extended master secret)."""
    if tls13:
        exts = _ext(0x002B, b"\x03\x04") + _ext(
            0x0033, struct.pack("!HH", _X25519, len(key_share)) + key_share
        )
    else:
        exts = _ext(0xFF01, b"\x00") + _ext(0x0017, b"")
    body = (
        struct.pack("!H32sB", 0x0303, random, len(session_id))
        + session_id
        + struct.pack("!HB", cipher_suite, 0)
        + struct.pack("!H", len(exts))
        + exts
    )
    return tls_record(22, _handshake(2, body))


def tls_change_cipher_spec() -> bytes:
    """ChangeCipherSpec record (TLS 1.3 middlebox compatibility, or TLS 1.2)."""
    return tls_record(20, b"\x01")


def tls_application_data(ciphertext: bytes) -> bytes:
    """Application data record with opaque (encrypted-looking) bytes."""
    return tls_record(23, ciphertext)


# ---- HTTP ------------------------------------------------------------------------------------
def http_request(
    host: str,
    path: str = "/",
    method: str = "GET",
    user_agent: str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """HTTP/1.1 request with Host, User-Agent, Accept and Connection headers."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {user_agent}"]
    lines += ["Accept: */*", "Connection: keep-alive"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 304: "Not Modified",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error"}  # fmt: skip


def http_response(
    status: int = 200,
    body: bytes = b"",
    content_type: str = "text/html; charset=utf-8",
    server: str = "Microsoft-IIS/10.0",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """HTTP/1.1 response with Server, Content-Type and Content-Length."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Server: {server}"]
    lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---- NTP -------------------------------------------------------------------------------------
_NTP_EPOCH = 2_208_988_800  # seconds from 1900 to 1970


def _ntp_ts(ts_ns: int) -> bytes:
    if ts_ns == 0:
        return bytes(8)
    sec, frac = divmod(ts_ns, 1_000_000_000)
    return struct.pack("!II", (sec + _NTP_EPOCH) & 0xFFFFFFFF, (frac << 32) // 1_000_000_000)


def ntp_client(transmit_ns: int, version: int = 4, poll: int = 6) -> bytes:
    """NTP client request (mode 3): only the transmit timestamp is set."""
    return (
        struct.pack("!BBbbII4s", version << 3 | 3, 0, poll, -20, 0, 0, bytes(4))
        + bytes(24)
        + _ntp_ts(transmit_ns)
    )


def ntp_server(
    originate_ns: int,
    receive_ns: int,
    transmit_ns: int,
    reference_ns: int,
    stratum: int = 2,
    reference_id: str | bytes = "192.168.1.1",
    version: int = 4,
    poll: int = 6,
) -> bytes:
    """NTP server reply (mode 4): ``originate`` echoes the client's transmit time;
    ``reference_id`` is an upstream address (stratum >= 2) or a 4-letter source ("GPS")."""
    if isinstance(reference_id, bytes):
        refid = reference_id
    elif stratum == 1:
        refid = reference_id.encode("ascii")[:4].ljust(4, b"\x00")
    else:
        refid = ipaddress.IPv4Address(reference_id).packed
    return (
        struct.pack(
            "!BBbbII4s", version << 3 | 4, stratum, poll, -23, 0x0000_0A00, 0x0000_0F00, refid
        )
        + _ntp_ts(reference_ns)
        + _ntp_ts(originate_ns)
        + _ntp_ts(receive_ns)
        + _ntp_ts(transmit_ns)
    )
