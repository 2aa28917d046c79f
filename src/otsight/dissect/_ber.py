"""BER (ASN.1 Basic Encoding Rules) readers shared by the IEC 61850 dissectors.

Plain Python for the rare, rich parts (MMS services, ACSE, the ``Data`` values of GOOSE and
MMS). Nothing here raises on bad bytes: a reader returns ``None`` (or a problem string) and
the dissector turns that into a ``weird`` row. (The kernels keep their own small BER
functions: numba caches a kernel per source file, so a kernel must not inline code from
another module.)
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import numpy as np

Tlv = tuple[int, int, int, int, int]  # (class, constructed, tag number, content start, end)


def tlv(data: bytes, p: int, end: int) -> Tlv | None:
    """The element at ``p`` (definite length, inside ``end``), or None."""
    if p >= end or end > len(data):
        return None
    first = data[p]
    num = first & 0x1F
    q = p + 1
    if num == 0x1F:
        num = 0
        for _ in range(4):
            if q >= end:
                return None
            d = data[q]
            q += 1
            num = (num << 7) | (d & 0x7F)
            if d < 0x80:
                break
        else:
            return None
    if q >= end:
        return None
    ln = data[q]
    q += 1
    if ln >= 0x80:
        k = ln & 0x7F
        if k == 0 or k > 4 or q + k > end:
            return None
        ln = int.from_bytes(data[q : q + k], "big")
        q += k
    if q + ln > end:
        return None
    return first >> 6, (first >> 5) & 1, num, q, q + ln


def children(data: bytes, start: int, end: int) -> tuple[list[Tlv], bool]:
    """The elements one after another in ``data[start:end]``; ok False if one is malformed
    (the list then holds those before it)."""
    out: list[Tlv] = []
    p = start
    while p < end:
        t = tlv(data, p, end)
        if t is None:
            return out, False
        out.append(t)
        p = t[4]
    return out, True


def find(items: list[Tlv], cls: int, num: int) -> Tlv | None:
    for t in items:
        if t[0] == cls and t[2] == num:
            return t
    return None


def to_int(raw: bytes) -> int | None:
    if not raw or len(raw) > 9:
        return None
    return int.from_bytes(raw, "big", signed=True)


def oid(raw: bytes) -> str | None:
    """An OBJECT IDENTIFIER's content as dotted text (None if malformed)."""
    if not raw or raw[-1] & 0x80:
        return None
    arcs: list[int] = []
    v = 0
    for c in raw:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            arcs.append(v)
            v = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def text(raw: bytes) -> str:
    """A VisibleString / MMSString as text (non-ASCII bytes become U+FFFD, as Wireshark)."""
    return raw.decode("ascii", errors="replace")


NS = 1_000_000_000


def utc_time_ns(raw: bytes) -> int | None:
    """IEC 61850 UtcTime (seconds, 24-bit fraction, quality) → ns since the epoch, with the
    fraction truncated to whole nanoseconds as Wireshark does."""
    if len(raw) != 8:
        return None
    secs = int.from_bytes(raw[0:4], "big")
    frac = int.from_bytes(raw[4:7], "big")
    return secs * NS + (frac * NS >> 24)


def format_ns(ns: int) -> str:
    secs, rem = divmod(ns, NS)
    try:
        stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{secs}.{rem:09d}"
    return f"{stamp}.{rem:09d}Z"


# Data ::= CHOICE (IEC 61850-8-1 / ISO 9506-2): context tag → name
DATA_TYPES = {
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "integer",
    6: "unsigned",
    7: "floating-point",
    8: "real",
    9: "octet-string",
    10: "visible-string",
    11: "generalized-time",
    12: "binary-time",
    13: "bcd",
    14: "booleanArray",
    15: "objId",
    16: "mMSString",
    17: "utc-time",
}

MAX_DEPTH = 12  # nesting of arrays / structures decoded before giving up
MAX_ITEMS = 256  # top-level entries kept per PDU
MAX_TEXT = 200  # characters kept per entry


def _float(raw: bytes) -> str:
    if len(raw) == 5 and raw[0] == 8:
        v = float(np.frombuffer(raw[1:], dtype=">f4")[0])
        return repr(float(np.float32(v))) if math.isfinite(v) else str(v)
    if len(raw) == 9 and raw[0] == 11:
        return repr(struct.unpack(">d", raw[1:])[0])
    return "0x" + raw.hex()


def real(raw: bytes) -> float | None:
    """An ASN.1 REAL's content (X.690 8.5): binary, decimal or special value; None if
    malformed."""
    if not raw:
        return 0.0
    first = raw[0]
    special = {0x40: math.inf, 0x41: -math.inf, 0x42: math.nan, 0x43: -0.0}
    if first in special:
        return special[first]
    if first & 0x80:  # binary: sign, base, scale factor, exponent length
        base = (2, 8, 16, None)[(first >> 4) & 3]
        if base is None:
            return None
        n = (first & 3) + 1
        p = 1
        if n == 4:
            if len(raw) < 2:
                return None
            n = raw[1]
            p = 2
        if n == 0 or len(raw) < p + n:
            return None
        exp = int.from_bytes(raw[p : p + n], "big", signed=True)
        mant = int.from_bytes(raw[p + n :], "big") << ((first >> 2) & 3)
        try:
            v = math.ldexp(float(mant), 0) * float(base) ** exp
        except OverflowError:
            v = math.inf
        return -v if first & 0x40 else v
    try:  # decimal (ISO 6093 NR1/NR2/NR3 text)
        return float(raw[1:].decode("ascii").replace(",", ".") or 0)
    except ValueError:
        return None


def _scalar(num: int, raw: bytes) -> tuple[str, str | None]:
    """Text of one primitive Data value, and a problem (or None)."""
    if num == 3:
        if len(raw) != 1:
            return "0x" + raw.hex(), "bad_boolean"
        return ("true" if raw[0] else "false"), None
    if num in (4, 14):
        if not raw:
            return "", "bad_bit_string"
        return f"{raw[1:].hex()}/{raw[0]}", None
    if num in (5, 6, 13):
        v = to_int(raw)
        return (str(v), None) if v is not None else ("0x" + raw.hex(), "bad_integer")
    if num == 7:
        return _float(raw), None
    if num == 8:
        r = real(raw)
        return (repr(r), None) if r is not None else ("0x" + raw.hex(), "bad_real")
    if num in (10, 11, 16):
        return text(raw), None
    if num == 15:
        o = oid(raw)
        return (o, None) if o is not None else ("0x" + raw.hex(), "bad_object_identifier")
    if num == 17:
        ns = utc_time_ns(raw)
        return (format_ns(ns), None) if ns is not None else ("0x" + raw.hex(), "bad_utc_time")
    return "0x" + raw.hex(), None  # octet-string, binary-time


def data_value(data: bytes, t: Tlv, depth: int = 0) -> tuple[str, str | None]:
    """One ``Data`` element as 'type:value' text, and the first problem met (or None)."""
    cls, cons, num, s, e = t
    name = DATA_TYPES.get(num, f"tag_{num}") if cls == 2 else f"class{cls}_tag_{num}"
    if cls != 2 or num not in DATA_TYPES:
        return f"{name}:0x{data[s:e].hex()}", "unknown_data_type"
    if num in (1, 2):
        if not cons:
            return f"{name}:0x{data[s:e].hex()}", "primitive_structure"
        if depth >= MAX_DEPTH:
            return f"{name}:{{…}}", "data_nesting_too_deep"
        items, ok = children(data, s, e)
        problem = None if ok else "bad_data_encoding"
        parts = []
        for x in items[:MAX_ITEMS]:
            text_, prob = data_value(data, x, depth + 1)
            parts.append(text_)
            problem = problem or prob
        return f"{name}:{{{','.join(parts)}}}", problem
    value, prob = _scalar(num, data[s:e])
    return f"{name}:{value}", prob


def data_values(data: bytes, start: int, end: int) -> tuple[list[str], list[str], str | None]:
    """Entries of a SEQUENCE OF Data: (type names, 'type:value' texts, first problem)."""
    items, ok = children(data, start, end)
    types, texts, problem = data_list(data, items)
    return types, texts, problem or (None if ok else "bad_data_encoding")


def data_list(data: bytes, items: list[Tlv]) -> tuple[list[str], list[str], str | None]:
    """``Data`` elements ``items``: (type names, 'type:value' texts, first problem)."""
    types: list[str] = []
    texts: list[str] = []
    problem = None
    for t in items[:MAX_ITEMS]:
        types.append(DATA_TYPES.get(t[2], f"tag_{t[2]}") if t[0] == 2 else f"tag_{t[2]}")
        text_, prob = data_value(data, t)
        texts.append(text_ if len(text_) <= MAX_TEXT else text_[: MAX_TEXT - 1] + "…")
        problem = problem or prob
    return types, texts, problem


def count_items(data: bytes, start: int, end: int) -> tuple[int, bool]:
    """How many elements a SEQUENCE OF holds (and whether all were well-formed)."""
    items, ok = children(data, start, end)
    return len(items), ok
