"""OPC UA binary over TCP (UA Connection Protocol + UA Secure Conversation, OPC 10000-6).

Every message chunk framed by the OPCUA framer (three ASCII octets HEL/ACK/ERR/RHE/OPN/MSG/CLO,
a chunk type F/C/A and a little-endian message size; recognised by content on any port)
becomes one row.

A kernel decodes what every chunk carries: the transport header, Hello/Acknowledge limits,
the secure channel id, the symmetric security header (token id), the sequence header
(sequence number, request id) and the start of the body: the type id of the service
(e.g. 631 ReadRequest) and the request header's RequestHandle or the response header's
RequestHandle and ServiceResult. Rare messages are decoded in Python from the offsets it
hands over: the Hello endpoint URL, Error code and reason, the OpenSecureChannel asymmetric
header (security policy URI) and body (request type, security mode, token id).

Secure channels and encryption. An OpenSecureChannel with a policy other than
``SecurityPolicy#None`` is always encrypted, and its MessageSecurityMode is inside the
encrypted body. Such a channel's MSG chunks are readable when the mode is Sign and not when it
is SignAndEncrypt: as Wireshark does since 4.2, the first MSG chunk after the OPN decides (a
body that starts with the type id of a known service is Sign; anything else is encrypted), and
the decision holds for the channel's connection until the next OPN. For encrypted chunks the
readable parts are reported (header, channel, token id) with ``encrypted`` set; sequence
number, request id and service stay null, never guessed. On a connection whose OPN was not
captured, a chunk is decoded only when its body starts with a known service type id.

A message split into chunks (C ... C F) is reported at its final chunk, as Wireshark
reassembles it: the service, handle and result read from the first chunk are carried to the
final one; the other chunks keep only their headers. An abort chunk (A) carries an error code
and reason. Responses are paired with their request by (connection, channel, request id) —
OpenSecureChannel by request id alone, since the request has channel 0 — for request_frame and
latency.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect.base import (
    CATEGORIES,
    ChunkContext,
    CodeNames,
    Dissector,
    Semantics,
    category_codes,
    dictionary_column,
    int_names,
    pairing_columns,
    take_envelope,
)
from otsight.dissect.base import null_negative as _col
from otsight.dissect.matching import RequestMatcher

PORT = 4840  # IANA; a hint in docs only: detection is by content

# ---- semantics ----------------------------------------------------------------------------
# Service encodings (DefaultBinary node ids of OPC 10000-4 services), request and response.
# Category and techniques describe what the request does; responses share the category and
# carry no technique (the request is the act).
_Spec = tuple[str, list[str]]
_DISCOVERY_SERVER: _Spec = ("discovery", ["T0846"])
_DISCOVERY_INFO: _Spec = ("discovery", ["T0888"])
_BROWSE: _Spec = ("discovery", ["T0861"])
_SESSION: _Spec = ("session", [])
_MONITOR: _Spec = ("read", ["T0801"])
_SUBSCRIPTION: _Spec = ("read", [])
_NODE_MGMT: _Spec = ("write", ["T0836"])

_SERVICES: dict[int, tuple[str, _Spec]] = {
    410: ("TestStack", ("diagnostic", [])),
    416: ("TestStackEx", ("diagnostic", [])),
    422: ("FindServers", _DISCOVERY_SERVER),
    12208: ("FindServersOnNetwork", _DISCOVERY_SERVER),
    428: ("GetEndpoints", _DISCOVERY_INFO),
    437: ("RegisterServer", ("write", ["T0849"])),
    12211: ("RegisterServer2", ("write", ["T0849"])),
    446: ("OpenSecureChannel", _SESSION),
    452: ("CloseSecureChannel", _SESSION),
    461: ("CreateSession", ("session", ["T0886"])),
    467: ("ActivateSession", ("session", ["T0859", "T0886"])),
    473: ("CloseSession", _SESSION),
    479: ("Cancel", _SESSION),
    488: ("AddNodes", _NODE_MGMT),
    494: ("AddReferences", _NODE_MGMT),
    500: ("DeleteNodes", ("write", ["T0836", "T0809"])),
    506: ("DeleteReferences", _NODE_MGMT),
    527: ("Browse", _BROWSE),
    533: ("BrowseNext", _BROWSE),
    554: ("TranslateBrowsePathsToNodeIds", _BROWSE),
    560: ("RegisterNodes", ("read", [])),
    566: ("UnregisterNodes", ("read", [])),
    615: ("QueryFirst", _BROWSE),
    621: ("QueryNext", _BROWSE),
    631: ("Read", _MONITOR),
    664: ("HistoryRead", ("read", ["T0801", "T0882"])),
    673: ("Write", ("write", ["T0836", "T0855"])),
    700: ("HistoryUpdate", ("write", ["T0836", "T0872"])),
    712: ("Call", ("control", ["T0855", "T0871"])),
    751: ("CreateMonitoredItems", _MONITOR),
    763: ("ModifyMonitoredItems", _SUBSCRIPTION),
    769: ("SetMonitoringMode", _SUBSCRIPTION),
    775: ("SetTriggering", _SUBSCRIPTION),
    781: ("DeleteMonitoredItems", _SUBSCRIPTION),
    787: ("CreateSubscription", _MONITOR),
    793: ("ModifySubscription", _SUBSCRIPTION),
    799: ("SetPublishingMode", _SUBSCRIPTION),
    826: ("Publish", _MONITOR),
    832: ("Republish", _SUBSCRIPTION),
    841: ("TransferSubscriptions", _SESSION),
    847: ("DeleteSubscriptions", _SUBSCRIPTION),
}
# the response of a service in this table is its request id + 3, except the two numbered apart
_RESPONSE_ID = {k: k + 3 for k in _SERVICES} | {12208: 12209, 12211: 12212}
SERVICE_FAULT = 397


def _service_rows() -> dict[Hashable, Any]:
    rows: dict[Hashable, Any] = {SERVICE_FAULT: ("ServiceFault", None)}
    for req, (name, (category, techniques)) in _SERVICES.items():
        rows[req] = (f"{name}Request", category, techniques)
        rows[_RESPONSE_ID[req]] = (f"{name}Response", category)
    return rows


SERVICES = Semantics("opcua", "service", _service_rows())

MESSAGE_TYPES = Semantics(
    "opcua",
    "message_type",
    {
        "HEL": ("hello", "session"),
        "ACK": ("acknowledge", None),
        "ERR": ("error", None),
        "RHE": ("reverse_hello", "session"),
        "OPN": ("open_secure_channel", "session"),
        "MSG": ("message", None),
        "CLO": ("close_secure_channel", "session"),
    },
)

SECURITY_MODES = Semantics(
    "opcua", "security_mode", {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}
)
TOKEN_REQUEST_TYPES = Semantics("opcua", "token_request_type", {0: "Issue", 1: "Renew"})

# StatusCode (OPC 10000-4 §7.39, StatusCode.csv): the names of the codes a monitor meets
# most; a code is named by its upper 16 bits (the lower ones are info bits).
STATUS_CODES = Semantics(
    "opcua",
    "status_code",
    {
        0x00000000: "Good",
        0x002D0000: "GoodSubscriptionTransferred",
        0x002E0000: "GoodCompletesAsynchronously",
        0x002F0000: "GoodOverload",
        0x00A90000: "GoodCallAgain",
        0x40000000: "Uncertain",
        0x80000000: "Bad",
        0x80010000: "BadUnexpectedError",
        0x80020000: "BadInternalError",
        0x80030000: "BadOutOfMemory",
        0x80040000: "BadResourceUnavailable",
        0x80050000: "BadCommunicationError",
        0x80060000: "BadEncodingError",
        0x80070000: "BadDecodingError",
        0x80080000: "BadEncodingLimitsExceeded",
        0x80090000: "BadUnknownResponse",
        0x800A0000: "BadTimeout",
        0x800B0000: "BadServiceUnsupported",
        0x800C0000: "BadShutdown",
        0x800D0000: "BadServerNotConnected",
        0x800E0000: "BadServerHalted",
        0x800F0000: "BadNothingToDo",
        0x80100000: "BadTooManyOperations",
        0x80110000: "BadDataTypeIdUnknown",
        0x80120000: "BadCertificateInvalid",
        0x80130000: "BadSecurityChecksFailed",
        0x80140000: "BadCertificateTimeInvalid",
        0x80170000: "BadCertificateUriInvalid",
        0x801A0000: "BadCertificateUntrusted",
        0x801D0000: "BadCertificateRevoked",
        0x801F0000: "BadUserAccessDenied",
        0x80200000: "BadIdentityTokenInvalid",
        0x80210000: "BadIdentityTokenRejected",
        0x80220000: "BadSecureChannelIdInvalid",
        0x80230000: "BadInvalidTimestamp",
        0x80240000: "BadNonceInvalid",
        0x80250000: "BadSessionIdInvalid",
        0x80260000: "BadSessionClosed",
        0x80270000: "BadSessionNotActivated",
        0x80280000: "BadSubscriptionIdInvalid",
        0x802A0000: "BadRequestHeaderInvalid",
        0x802C0000: "BadRequestCancelledByClient",
        0x80330000: "BadNodeIdInvalid",
        0x80340000: "BadNodeIdUnknown",
        0x80350000: "BadAttributeIdInvalid",
        0x803A0000: "BadNotReadable",
        0x803B0000: "BadNotWritable",
        0x803C0000: "BadOutOfRange",
        0x803D0000: "BadNotSupported",
        0x803E0000: "BadNotFound",
        0x80400000: "BadNotImplemented",
        0x80530000: "BadRequestTypeInvalid",
        0x80540000: "BadSecurityModeRejected",
        0x80550000: "BadSecurityPolicyRejected",
        0x80560000: "BadTooManySessions",
        0x80570000: "BadUserSignatureInvalid",
        0x80580000: "BadApplicationSignatureInvalid",
        0x80690000: "BadNoDeleteRights",
        0x80730000: "BadWriteNotSupported",
        0x80740000: "BadTypeMismatch",
        0x80750000: "BadMethodInvalid",
        0x80760000: "BadArgumentsMissing",
        0x80770000: "BadTooManySubscriptions",
        0x80780000: "BadTooManyPublishRequests",
        0x80790000: "BadNoSubscription",
        0x807D0000: "BadTcpServerTooBusy",
        0x807E0000: "BadTcpMessageTypeInvalid",
        0x807F0000: "BadTcpSecureChannelUnknown",
        0x80800000: "BadTcpMessageTooLarge",
        0x80810000: "BadTcpNotEnoughResources",
        0x80820000: "BadTcpInternalError",
        0x80830000: "BadTcpEndpointUrlInvalid",
        0x80840000: "BadRequestInterrupted",
        0x80850000: "BadRequestTimeout",
        0x80860000: "BadSecureChannelClosed",
        0x80870000: "BadSecureChannelTokenUnknown",
        0x80880000: "BadSequenceNumberInvalid",
        0x80890000: "BadConfigurationError",
        0x808A0000: "BadNotConnected",
        0x808B0000: "BadDeviceFailure",
        0x808D0000: "BadOutOfService",
        0x80AB0000: "BadInvalidArgument",
        0x80AC0000: "BadConnectionRejected",
        0x80AD0000: "BadDisconnect",
        0x80AE0000: "BadConnectionClosed",
        0x80AF0000: "BadInvalidState",
        0x80B70000: "BadMaxConnectionsReached",
        0x80B80000: "BadRequestTooLarge",
        0x80B90000: "BadResponseTooLarge",
        0x80BE0000: "BadProtocolVersionUnsupported",
        0x80E40000: "BadRequestNotAllowed",
        0x80E50000: "BadTooManyArguments",
        0x80E60000: "BadSecurityModeInsufficient",
        0x80EE0000: "BadServerTooBusy",
        0x810D0000: "BadCertificateChainIncomplete",
        0x81110000: "BadNotExecutable",
    },
)

# service id → 1 request, 2 response (ServiceFault included), 0 unknown
SERVICE_TABLE_SIZE = 12288
SERVICE_KIND = np.zeros(SERVICE_TABLE_SIZE, dtype=np.int64)
for _req in _SERVICES:
    SERVICE_KIND[_req] = 1
    SERVICE_KIND[_RESPONSE_ID[_req]] = 2
SERVICE_KIND[SERVICE_FAULT] = 2
# request service id of each response id (pairing checks it), -1 elsewhere
REQUEST_OF = np.full(SERVICE_TABLE_SIZE, -1, dtype=np.int64)
for _req in _SERVICES:
    REQUEST_OF[_RESPONSE_ID[_req]] = _req

POLICY_NONE = b"http://opcfoundation.org/UA/SecurityPolicy#None"
_POLICY_NONE_ARR = np.frombuffer(POLICY_NONE, dtype=np.uint8)

# ---- kernel -------------------------------------------------------------------------------
# message types (index into MESSAGE_TYPE_NAMES)
HEL, ACK, ERR, RHE, OPN, MSG, CLO = range(7)
MESSAGE_TYPE_NAMES = ["HEL", "ACK", "ERR", "RHE", "OPN", "MSG", "CLO"]
_TYPE_BYTES = [b"HEL", b"ACK", b"ERR", b"RHE", b"OPN", b"MSG", b"CLO"]

# columns of the kernel's int64 output (-1 = absent)
MTYPE, CHUNK, SIZE, CHANNEL, TOKEN, SEQ, REQID, SERVICE, HANDLE, RESULT = range(10)
PVER, RBS, SBS, MMS, MCC, ERROR, POLICY, KIND, PLAUSIBLE, BODY, STATUS = range(10, 21)
NCOL = 21
# POLICY: 1 SecurityPolicy#None, 0 another policy, -1 not an OPN (or unreadable)
# BODY: offset of the type id within the chunk (after the sequence header), -1 if none

OK, TOO_SHORT, BAD_STRING, BAD_CHUNK_TYPE, SHORT_BODY, BAD_TYPE_ID = 0, 1, 2, 3, 4, 5
WEIRD = {
    TOO_SHORT: "opcua_message_too_short",
    BAD_STRING: "opcua_bad_string_length",
    BAD_CHUNK_TYPE: "opcua_bad_chunk_type",
    SHORT_BODY: "opcua_truncated_body_header",
    BAD_TYPE_ID: "opcua_unknown_type_id",
}


@njit(cache=True, inline="always")
def _u32(b, p):
    return (
        np.int64(b[p])
        | (np.int64(b[p + 1]) << 8)
        | (np.int64(b[p + 2]) << 16)
        | (np.int64(b[p + 3]) << 24)
    )


@njit(cache=True, inline="always")
def _i32(b, p):
    v = _u32(b, p)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@njit(cache=True, inline="always")
def _u16(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, inline="always")
def _skip_string(b, q, end):
    """Offset after a String/ByteString at ``q`` (int32 length, -1 = null), or -1."""
    if q + 4 > end:
        return np.int64(-1)
    n = _i32(b, q)
    if n < -1 or q + 4 + max(n, np.int64(0)) > end:
        return np.int64(-1)
    return q + 4 + max(n, np.int64(0))


@njit(cache=True, inline="always")
def _skip_node_id(b, q, end):
    """Offset after a NodeId at ``q``, or -1 (unknown encoding or past ``end``)."""
    if q >= end:
        return np.int64(-1)
    enc = b[q]
    r = np.int64(-1)
    if enc == 0:
        r = q + 2
    elif enc == 1:
        r = q + 4
    elif enc == 2:
        r = q + 7
    elif enc == 3 or enc == 5:
        return _skip_string(b, q + 3, end)
    elif enc == 4:
        r = q + 19
    if r > end:
        return np.int64(-1)
    return r


@njit(cache=True, inline="always")
def _message_type(b, p):
    c0, c1, c2 = b[p], b[p + 1], b[p + 2]
    if c0 == 0x48 and c1 == 0x45 and c2 == 0x4C:
        return HEL
    if c0 == 0x41 and c1 == 0x43 and c2 == 0x4B:
        return ACK
    if c0 == 0x45 and c1 == 0x52 and c2 == 0x52:
        return ERR
    if c0 == 0x52 and c1 == 0x48 and c2 == 0x45:
        return RHE
    if c0 == 0x4F and c1 == 0x50 and c2 == 0x4E:
        return OPN
    if c0 == 0x4D and c1 == 0x53 and c2 == 0x47:
        return MSG
    if c0 == 0x43 and c1 == 0x4C and c2 == 0x4F:
        return CLO
    return -1


@njit(cache=True, inline="always")
def _service(b, p, q, end, kind_of, out, j):
    """Type id and request/response header at ``q`` (the body), as if it is plaintext."""
    out[j, BODY] = q - p
    if q >= end:
        out[j, STATUS] = SHORT_BODY
        return
    enc = b[q]
    sid = np.int64(-1)
    ns = np.int64(0)
    r = np.int64(-1)
    if enc == 0 and q + 2 <= end:
        sid = np.int64(b[q + 1])
        r = q + 2
    elif enc == 1 and q + 4 <= end:
        ns = np.int64(b[q + 1])
        sid = _u16(b, q + 2)
        r = q + 4
    elif enc == 2 and q + 7 <= end:
        ns = _u16(b, q + 1)
        sid = _u32(b, q + 3)
        r = q + 7
    if sid < 0:
        out[j, STATUS] = BAD_TYPE_ID
        return
    out[j, SERVICE] = sid
    kind = kind_of[sid] if sid < kind_of.shape[0] else 0
    if ns != 0:
        kind = 0
    out[j, KIND] = kind
    out[j, PLAUSIBLE] = 1 if kind > 0 else 0
    if kind == 1:  # RequestHeader: AuthenticationToken, Timestamp, RequestHandle
        h = _skip_node_id(b, r, end)
        if h < 0 or h + 12 > end:
            out[j, STATUS] = SHORT_BODY
            return
        out[j, HANDLE] = _u32(b, h + 8)
    elif kind == 2:  # ResponseHeader: Timestamp, RequestHandle, ServiceResult
        if r + 16 > end:
            out[j, STATUS] = SHORT_BODY
            return
        out[j, HANDLE] = _u32(b, r + 8)
        out[j, RESULT] = _u32(b, r + 12)


@njit(cache=True, nogil=True, _nrt=False)
def _fields(buf, arena, in_arena, off, length, kind_of, policy_none, out):
    """Header fields of each chunk, its body decoded as if it were plaintext."""
    n = off.shape[0]
    for j in range(n):
        b = arena if in_arena[j] else buf
        p = off[j]
        end = p + length[j]
        for c in range(NCOL):
            out[j, c] = -1
        out[j, STATUS] = OK
        out[j, PLAUSIBLE] = 0
        out[j, KIND] = 0
        mt = _message_type(b, p)
        out[j, MTYPE] = mt
        out[j, CHUNK] = b[p + 3]
        out[j, SIZE] = _u32(b, p + 4)
        if mt != MSG and b[p + 3] != 0x46:
            out[j, STATUS] = BAD_CHUNK_TYPE
        if mt == HEL or mt == ACK:
            if end - p < 28:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, PVER] = _u32(b, p + 8)
            out[j, RBS] = _u32(b, p + 12)
            out[j, SBS] = _u32(b, p + 16)
            out[j, MMS] = _u32(b, p + 20)
            out[j, MCC] = _u32(b, p + 24)
            if mt == HEL:
                if _skip_string(b, p + 28, end) < 0:
                    out[j, STATUS] = BAD_STRING if end - p >= 32 else TOO_SHORT
        elif mt == ERR:
            if end - p < 16:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, ERROR] = _u32(b, p + 8)
            if _skip_string(b, p + 12, end) < 0:
                out[j, STATUS] = BAD_STRING
        elif mt == RHE:
            q = _skip_string(b, p + 8, end)
            if q < 0 or _skip_string(b, q, end) < 0:
                out[j, STATUS] = BAD_STRING if end - p >= 16 else TOO_SHORT
        elif mt == OPN:
            if end - p < 12:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, CHANNEL] = _u32(b, p + 8)
            q = p + 12
            if q + 4 > end:
                out[j, STATUS] = TOO_SHORT
                continue
            ulen = _i32(b, q)
            is_none = ulen == policy_none.shape[0] and q + 4 + ulen <= end
            if is_none:
                for k in range(policy_none.shape[0]):
                    if b[q + 4 + k] != policy_none[k]:
                        is_none = False
                        break
            q = _skip_string(b, q, end)  # SecurityPolicyUri
            if q >= 0:
                q = _skip_string(b, q, end)  # SenderCertificate
            if q >= 0:
                q = _skip_string(b, q, end)  # ReceiverCertificateThumbprint
            if q < 0:
                out[j, STATUS] = BAD_STRING
                continue
            out[j, POLICY] = 1 if is_none else 0
            if not is_none:
                continue  # always encrypted: nothing more is readable
            if q + 8 > end:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, SEQ] = _u32(b, q)
            out[j, REQID] = _u32(b, q + 4)
            _service(b, p, q + 8, end, kind_of, out, j)
        elif mt == MSG or mt == CLO:
            if end - p < 16:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, CHANNEL] = _u32(b, p + 8)
            out[j, TOKEN] = _u32(b, p + 12)
            if end - p < 24:
                out[j, STATUS] = TOO_SHORT
                continue
            out[j, SEQ] = _u32(b, p + 16)
            out[j, REQID] = _u32(b, p + 20)
            if b[p + 3] == 0x41:  # abort: error code and reason instead of a service
                out[j, BODY] = 24
                if end - p >= 28:
                    out[j, ERROR] = _u32(b, p + 24)
                continue
            _service(b, p, p + 24, end, kind_of, out, j)


# channel modes (per connection)
M_UNKNOWN, M_NONE, M_MAYBE, M_SIGN, M_ENCRYPT = 0, 1, 2, 3, 4
_MODE_NUMBER = np.array([-1, 1, -1, 2, 3], dtype=np.int64)  # → MessageSecurityMode
# flow state columns (carried across chunks)
S_MODE, S_POLICY, S_PEND0, S_PEND1, S_SVC0, S_SVC1, S_HANDLE0, S_HANDLE1 = range(8)
S_RESULT0, S_RESULT1, S_KIND0, S_KIND1, S_TS = 8, 9, 10, 11, 12
NSTATE = 13


@njit(cache=True, nogil=True, _nrt=False)
def _channels(out, fidx, side, opn_policy, ts, state, mode, policy, encrypted):
    """Walk chunks in capture order per connection: security mode, encryption, chunking.

    ``opn_policy[j]`` is the index of row j's OPN policy URI (-1 elsewhere); ``state`` holds
    each connection's state (see S_*). Rows whose body cannot be read lose the fields decoded
    as plaintext (``encrypted`` 1, or -1 when it cannot be told); a multi-chunk message's
    service is moved to its final chunk.
    """
    for j in range(out.shape[0]):
        f = fidx[j]
        s = side[j]
        state[f, S_TS] = ts[j]
        mt = out[j, MTYPE]
        encrypted[j] = 0
        mode[j] = -1
        policy[j] = -1
        if mt == OPN:
            if out[j, POLICY] >= 0:
                state[f, S_MODE] = M_NONE if out[j, POLICY] == 1 else M_MAYBE
                state[f, S_POLICY] = opn_policy[j]
                state[f, S_PEND0] = -1
                state[f, S_PEND1] = -1
            if out[j, POLICY] == 0:
                encrypted[j] = 1
            elif out[j, POLICY] == 1:
                mode[j] = 1  # SecurityPolicy#None goes with MessageSecurityMode None
            policy[j] = opn_policy[j]
            continue
        if mt != MSG and mt != CLO:
            continue
        policy[j] = state[f, S_POLICY]
        chunk = out[j, CHUNK]
        m = state[f, S_MODE]
        if m == M_MAYBE and out[j, SEQ] >= 0 and chunk != 0x41:
            # the first chunk after an OPN with a policy: Sign if it reads as a service
            m = M_SIGN if out[j, PLAUSIBLE] == 1 else M_ENCRYPT
            state[f, S_MODE] = m
        mode[j] = _MODE_NUMBER[m]
        if out[j, SEQ] < 0:  # too short for a sequence header: a weird row already
            if m == M_ENCRYPT:
                encrypted[j] = 1
            continue
        pend = state[f, S_PEND0 + s]
        cont = pend >= 0 and pend == out[j, REQID]
        if m == M_NONE or m == M_SIGN:
            readable = True
        elif m == M_UNKNOWN:
            # no OPN seen: read what starts like a known service, and the continuation of
            # a chunked message that did
            readable = out[j, PLAUSIBLE] == 1 or cont
        else:  # encrypted, or undecided (an abort first)
            readable = False
        if m == M_ENCRYPT:
            encrypted[j] = 1
        elif not readable:
            encrypted[j] = -1
        if not readable:
            for c in (SEQ, REQID, SERVICE, HANDLE, RESULT, ERROR, KIND):
                out[j, c] = -1
            out[j, BODY] = -1
            if out[j, STATUS] == SHORT_BODY or out[j, STATUS] == BAD_TYPE_ID:
                out[j, STATUS] = OK  # unreadable is not malformed
            continue
        if cont and chunk != 0x41:
            # the body continues a chunked message: it does not start with a type id
            if out[j, STATUS] == SHORT_BODY or out[j, STATUS] == BAD_TYPE_ID:
                out[j, STATUS] = OK
            out[j, KIND] = state[f, S_KIND0 + s]
            if chunk == 0x46:  # the final chunk reports the message
                out[j, SERVICE] = state[f, S_SVC0 + s]
                out[j, HANDLE] = state[f, S_HANDLE0 + s]
                out[j, RESULT] = state[f, S_RESULT0 + s]
                state[f, S_PEND0 + s] = -1
            else:
                out[j, SERVICE] = -1
                out[j, HANDLE] = -1
                out[j, RESULT] = -1
            out[j, BODY] = -1
            continue
        if chunk == 0x41:  # the sender abandons the message
            if cont:
                out[j, KIND] = state[f, S_KIND0 + s]
                state[f, S_PEND0 + s] = -1
            continue
        # the body starts with a type id: a single-chunk message or a first chunk
        if out[j, KIND] == 0 and out[j, SERVICE] >= 0 and out[j, STATUS] == OK:
            out[j, STATUS] = BAD_TYPE_ID  # readable, but no service this table knows
        if chunk == 0x43:  # keep its service for the final chunk
            state[f, S_PEND0 + s] = out[j, REQID]
            state[f, S_SVC0 + s] = out[j, SERVICE]
            state[f, S_HANDLE0 + s] = out[j, HANDLE]
            state[f, S_RESULT0 + s] = out[j, RESULT]
            state[f, S_KIND0 + s] = out[j, KIND]
            out[j, SERVICE] = -1
            out[j, HANDLE] = -1
            out[j, RESULT] = -1
            out[j, BODY] = -1


@njit(cache=True, nogil=True, _nrt=False)
def _pair_keys(out, channel_key, is_req, take):
    """Pairing key of each row (OPN by request id, MSG/CLO by channel and request id) and
    whether it takes part: complete requests and responses whose request id was read."""
    for j in range(out.shape[0]):
        take[j] = False
        channel_key[j] = 0
        is_req[j] = False
        mt = out[j, MTYPE]
        if out[j, REQID] < 0 or out[j, KIND] <= 0 or out[j, CHUNK] != 0x46:
            continue
        if mt == OPN:
            channel_key[j] = (np.int64(1) << 40) | out[j, REQID]
        elif mt == MSG or mt == CLO:
            channel_key[j] = (out[j, CHANNEL] << 32) | out[j, REQID]
        else:
            continue
        take[j] = True
        is_req[j] = out[j, KIND] == 1


# ---- rare parts, in Python ----------------------------------------------------------------
class _Reader:
    """Little-endian reader for the rare rich parts; raises IndexError past the end."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise IndexError("past the end")
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def i32(self) -> int:
        return int(struct.unpack("<i", self.take(4))[0])

    def string(self) -> bytes | None:
        n = self.i32()
        if n < -1:
            raise IndexError("negative length")
        return None if n == -1 else self.take(n)

    def node_id(self) -> None:
        enc = self.u8()
        size = {0: 1, 1: 3, 2: 6, 4: 18}.get(enc & 0x3F)
        if size is not None:
            self.take(size)
        elif enc & 0x3F in (3, 5):
            self.take(2)
            self.string()
        else:
            raise IndexError(f"node id encoding {enc}")
        if enc & 0x80:  # ExpandedNodeId: namespace URI
            self.string()
        if enc & 0x40:  # and server index
            self.take(4)

    def extension_object(self) -> None:
        self.node_id()
        if self.u8() & 0x03:
            self.take(max(self.i32(), 0))

    def diagnostic_info(self, depth: int = 0) -> None:
        if depth > 32:
            raise IndexError("diagnostic info nested too deep")
        mask = self.u8()
        for bit in (0x01, 0x02, 0x08, 0x04):  # symbolic id, namespace, locale, localized text
            if mask & bit:
                self.take(4)
        if mask & 0x10:
            self.string()
        if mask & 0x20:
            self.take(4)
        if mask & 0x40:
            self.diagnostic_info(depth + 1)

    def request_header(self) -> None:
        self.node_id()  # AuthenticationToken
        self.take(8 + 4 + 4)  # Timestamp, RequestHandle, ReturnDiagnostics
        self.string()  # AuditEntryId
        self.take(4)  # TimeoutHint
        self.extension_object()

    def response_header(self) -> None:
        self.take(8 + 4 + 4)  # Timestamp, RequestHandle, ServiceResult
        self.diagnostic_info()
        count = self.i32()
        for _ in range(max(count, 0)):
            self.string()
        self.extension_object()


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _opn_details(data: bytes, body: int, service: int) -> tuple[int, int, int] | None:
    """(token request type, security mode, token id) of a plaintext OPN body (-1 = absent)."""
    r = _Reader(data, body)
    try:
        r.node_id()  # type id (already decoded)
        if service == 446:
            r.request_header()
            r.u32()  # ClientProtocolVersion
            return r.u32(), r.u32(), -1
        if service == 449:
            r.response_header()
            r.u32()  # ServerProtocolVersion
            r.u32()  # SecurityToken.ChannelId
            return -1, -1, r.u32()
    except IndexError:
        return None
    return -1, -1, -1


# ---- schema -------------------------------------------------------------------------------
_S = E._STR
SCHEMA = E._schema(
    "opcua",
    E.PDU_COMMON
    + [
        pa.field("message_type", _S),  # HEL ACK ERR RHE OPN MSG CLO
        pa.field("chunk_type", _S),  # F final, C intermediate, A abort
        pa.field("message_size", pa.int64()),
        pa.field("is_request", pa.bool_()),  # null when the body is not readable
        pa.field("secure_channel_id", pa.int64()),
        pa.field("security_policy", _S),  # URI, from the channel's OpenSecureChannel
        pa.field("security_mode", pa.int16()),  # 1 None, 2 Sign, 3 SignAndEncrypt
        pa.field("security_mode_name", _S),
        pa.field("encrypted", pa.bool_()),  # body unreadable (null: cannot tell)
        pa.field("security_token_id", pa.int64()),
        pa.field("sequence_number", pa.int64()),
        pa.field("request_id", pa.int64()),
        pa.field("service", pa.int32()),  # type id of the encoding, e.g. 631
        pa.field("service_name", _S),  # e.g. ReadRequest
        pa.field("category", _S),
        pa.field("request_handle", pa.int64()),
        pa.field("status_code", pa.int64()),  # ServiceResult of a response
        pa.field("status_name", _S),
        pa.field("token_request_type", pa.int16()),  # OpenSecureChannel: 0 Issue, 1 Renew
        pa.field("token_request_type_name", _S),
        pa.field("endpoint_url", pa.string()),  # Hello, ReverseHello
        pa.field("server_uri", pa.string()),  # ReverseHello
        pa.field("protocol_version", pa.int64()),  # Hello, Acknowledge
        pa.field("receive_buffer_size", pa.int64()),
        pa.field("send_buffer_size", pa.int64()),
        pa.field("max_message_size", pa.int64()),
        pa.field("max_chunk_count", pa.int64()),
        pa.field("error_code", pa.int64()),  # Error message, abort chunk
        pa.field("error_name", _S),
        pa.field("error_reason", pa.string()),
    ]
    + E._REQUEST_MATCH,
    "OPC UA binary (UA TCP, UA Secure Conversation) message chunks, requests and responses.",
)


# ---- the dissector --------------------------------------------------------------------------
_N_SERVICES = CodeNames(int_names(SERVICES))
_N_SECURITY_MODES = CodeNames(int_names(SECURITY_MODES))
_N_TOKEN_TYPES = CodeNames(int_names(TOKEN_REQUEST_TYPES))
_N_STATUS = CodeNames(
    {k >> 16: v for k, v in int_names(STATUS_CODES).items()},
    key=lambda codes: codes >> 16,
    unknown=lambda code: f"0x{code:08X}",
)
_CAT_OF_SERVICE = category_codes(SERVICES, SERVICE_TABLE_SIZE)
_CAT_OF_TYPE = np.full(len(MESSAGE_TYPE_NAMES), -1, dtype=np.int64)
for _i, _t in enumerate(MESSAGE_TYPE_NAMES):
    _cat = MESSAGE_TYPES[_t].category
    if _cat:
        _CAT_OF_TYPE[_i] = CATEGORIES.index(_cat)


def _categories(out: np.ndarray) -> pa.DictionaryArray:
    """By service when known, else by message type (Hello, OpenSecureChannel... are session)."""
    svc = out[:, SERVICE]
    known = (svc >= 0) & (svc < SERVICE_TABLE_SIZE)
    cat = np.where(known, _CAT_OF_SERVICE[np.where(known, svc, 0)], -1)
    mt = out[:, MTYPE]
    by_type = (cat < 0) & (mt >= 0) & (mt != MSG)
    cat[by_type] = _CAT_OF_TYPE[mt[by_type]]
    return dictionary_column(cat, list(CATEGORIES))


class OpcuaDissector(Dissector):
    name = "opcua"
    tables = {"opcua": SCHEMA}
    framers = (framing.OPCUA,)
    semantics = (SERVICES, MESSAGE_TYPES, SECURITY_MODES, TOKEN_REQUEST_TYPES, STATUS_CODES)

    STATE_TTL_NS = 3600 * 1_000_000_000  # a connection's channel state is kept this long idle

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)
        self.flow_state: dict[int, np.ndarray] = {}
        self._swept = 0
        self.policies: list[str] = []  # security policy URIs seen (index = dictionary code)
        self._policy_index: dict[str, int] = {}

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.OPCUA)
        n = idx.shape[0]
        if n == 0:
            return {}
        env = ctx.pdu_envelope(idx)
        P = ctx.track.pdus
        in_arena, off, length = ctx.pdu_locations(idx)
        out = np.empty((n, NCOL), dtype=np.int64)
        _fields(
            ctx.chunk.buf, ctx.track.arena, in_arena, off, length, SERVICE_KIND,
            _POLICY_NONE_ARR, out,
        )  # fmt: skip
        flow = P[idx, T.P_FLOW]
        ts = P[idx, T.P_TS]
        mt = out[:, MTYPE]

        # rare messages: strings and OpenSecureChannel details, in Python
        opn_policy = np.full(n, -1, dtype=np.int64)
        token_type = np.full(n, -1, dtype=np.int64)
        sec_mode_opn = np.full(n, -1, dtype=np.int64)
        endpoint: list[str | None] = [None] * n
        server_uri: list[str | None] = [None] * n
        reason: list[str | None] = [None] * n
        strings = (endpoint, server_uri, reason)
        for row in np.flatnonzero((mt == HEL) | (mt == ERR) | (mt == RHE) | (mt == OPN)):
            self._rare(ctx.pdu_bytes(idx[row]), int(row), out, opn_policy, token_type,
                       sec_mode_opn, strings)  # fmt: skip

        # channel state, encryption and chunking, per connection in capture order
        uniq, fidx = np.unique(flow, return_inverse=True)
        fidx = fidx.reshape(-1).astype(np.int64)
        state = np.zeros((uniq.shape[0], NSTATE), dtype=np.int64)
        for i, f in enumerate(uniq):
            carried = self.flow_state.get(int(f))
            if carried is not None:
                state[i] = carried
            else:
                state[i, S_MODE] = M_UNKNOWN
                state[i, S_POLICY] = -1
                state[i, S_PEND0] = state[i, S_PEND1] = -1
        side = (P[idx, T.P_ORIG] == 0).astype(np.int64)
        mode = np.empty(n, dtype=np.int64)
        policy = np.empty(n, dtype=np.int64)
        encrypted = np.empty(n, dtype=np.int64)
        _channels(out, fidx, side, opn_policy, ts, state, mode, policy, encrypted)
        for i, f in enumerate(uniq):
            self.flow_state[int(f)] = state[i].copy()
        self._expire(int(ts.max()))
        mode = np.where(sec_mode_opn >= 0, sec_mode_opn, mode)
        # abort chunks that could be read: error code and reason
        for k in np.flatnonzero((out[:, CHUNK] == 0x41) & (out[:, ERROR] >= 0)):
            self._rare(ctx.pdu_bytes(idx[k]), int(k), out, opn_policy, token_type,
                       sec_mode_opn, strings)  # fmt: skip

        kind = out[:, KIND]
        is_req = np.where(kind == 1, 1, np.where(kind == 2, 0, -1))
        is_req[(mt == HEL) | (mt == CLO)] = 1
        is_req[(mt == ACK) | (mt == ERR) | (mt == RHE)] = 0

        matched, req_frame, req_ts = self._pair(out, flow, P[idx, T.P_FRAME], ts)
        batch = dict(env)
        batch.update(
            {
                "message_type": dictionary_column(mt, MESSAGE_TYPE_NAMES),
                "chunk_type": dictionary_column(
                    np.select(
                        [out[:, CHUNK] == 0x46, out[:, CHUNK] == 0x43, out[:, CHUNK] == 0x41],
                        [0, 1, 2],
                        -1,
                    ),
                    ["F", "C", "A"],
                ),
                "message_size": _col(out[:, SIZE], np.int64),
                "is_request": pa.array(is_req == 1, mask=is_req < 0),
                "secure_channel_id": _col(out[:, CHANNEL], np.int64),
                "security_policy": dictionary_column(policy, list(self.policies)),
                "security_mode": _col(mode, np.int16),
                "security_mode_name": _N_SECURITY_MODES(mode),
                "encrypted": pa.array(encrypted == 1, mask=encrypted < 0),
                "security_token_id": _col(out[:, TOKEN], np.int64),
                "sequence_number": _col(out[:, SEQ], np.int64),
                "request_id": _col(out[:, REQID], np.int64),
                "service": _col(out[:, SERVICE], np.int32),
                "service_name": _N_SERVICES(out[:, SERVICE]),
                "category": _categories(out),
                "request_handle": _col(out[:, HANDLE], np.int64),
                "status_code": _col(out[:, RESULT], np.int64),
                "status_name": _N_STATUS(out[:, RESULT]),
                "token_request_type": _col(token_type, np.int16),
                "token_request_type_name": _N_TOKEN_TYPES(token_type),
                "endpoint_url": pa.array(endpoint, type=pa.string()),
                "server_uri": pa.array(server_uri, type=pa.string()),
                "protocol_version": _col(out[:, PVER], np.int64),
                "receive_buffer_size": _col(out[:, RBS], np.int64),
                "send_buffer_size": _col(out[:, SBS], np.int64),
                "max_message_size": _col(out[:, MMS], np.int64),
                "max_chunk_count": _col(out[:, MCC], np.int64),
                "error_code": _col(out[:, ERROR], np.int64),
                "error_name": _N_STATUS(out[:, ERROR]),
                "error_reason": pa.array(reason, type=pa.string()),
                **pairing_columns(matched, req_frame, req_ts, ts),
            }
        )
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [_detail(out[k], int(length[k])) for k in bad],
                "opcua",
            )
        return {"opcua": pa.RecordBatch.from_pydict(batch, schema=SCHEMA)}

    def _rare(self, data, k, out, opn_policy, token_type, sec_mode, strings):
        """Strings of Hello/Error/ReverseHello/abort chunks and OpenSecureChannel details."""
        endpoint, server_uri, reason = strings
        mt = out[k, MTYPE]
        try:
            if mt == HEL and out[k, STATUS] == OK:
                endpoint[k] = _text(_Reader(data, 28).string())
            elif mt == ERR and out[k, STATUS] == OK:
                reason[k] = _text(_Reader(data, 12).string())
            elif mt == RHE and out[k, STATUS] == OK:
                r = _Reader(data, 8)
                server_uri[k] = _text(r.string())
                endpoint[k] = _text(r.string())
            elif mt in (MSG, CLO) and out[k, CHUNK] == 0x41 and len(data) >= 28:
                reason[k] = _text(_Reader(data, 28).string())
            elif mt == OPN and out[k, POLICY] >= 0:
                uri = _text(_Reader(data, 12).string()) or ""
                opn_policy[k] = self._policy(uri)
                if out[k, BODY] >= 0 and out[k, SERVICE] >= 0:
                    got = _opn_details(data, int(out[k, BODY]), int(out[k, SERVICE]))
                    if got is None:
                        out[k, STATUS] = SHORT_BODY
                    else:
                        token_type[k], sec_mode[k], token = got
                        if token >= 0:
                            out[k, TOKEN] = token
        except IndexError:
            out[k, STATUS] = BAD_STRING

    def _policy(self, uri: str) -> int:
        at = self._policy_index.get(uri)
        if at is None:
            at = self._policy_index[uri] = len(self.policies)
            self.policies.append(uri)
        return at

    def _expire(self, now: int) -> None:
        # a sweep over the connections now and then, not per chunk
        if len(self.flow_state) < 4096 or now - self._swept < self.STATE_TTL_NS // 8:
            return
        self._swept = now
        old = [f for f, s in self.flow_state.items() if s[S_TS] < now - self.STATE_TTL_NS]
        for f in old:
            del self.flow_state[f]

    def _pair(self, out, flow, frame, ts):
        n = out.shape[0]
        key = np.empty(n, np.int64)
        is_req = np.empty(n, np.bool_)
        take = np.empty(n, np.bool_)
        _pair_keys(out, key, is_req, take)
        matched = np.zeros(n, bool)
        req_frame = np.zeros(n, np.int64)
        req_ts = np.zeros(n, np.int64)
        rows = np.flatnonzero(take)
        if rows.shape[0] == 0:
            return matched, req_frame, req_ts
        svc = out[rows, SERVICE]
        m, rf, rts, rpl = self.matcher.match(
            flow[rows], key[rows], is_req[rows], frame[rows], ts[rows], svc.reshape(-1, 1)
        )
        inside = (svc >= 0) & (svc < SERVICE_TABLE_SIZE)
        wanted = np.where(inside, REQUEST_OF[np.where(inside, svc, 0)], -1)
        m &= (svc == SERVICE_FAULT) | (wanted == rpl[:, 0])  # the answer to that request
        matched[rows] = m
        req_frame[rows] = rf
        req_ts[rows] = rts
        return matched, req_frame, req_ts


def _detail(row: np.ndarray, length: int) -> str:
    mt = int(row[MTYPE])
    text = f"{MESSAGE_TYPE_NAMES[mt] if mt >= 0 else '?'}{chr(int(row[CHUNK]))}, {length} bytes"
    if row[SERVICE] >= 0:
        text += f", type id {int(row[SERVICE])}"
    return text


DISSECTOR = OpcuaDissector
