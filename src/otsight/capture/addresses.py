"""Turn address columns (integers) into dictionary-encoded strings, once per distinct value.

Packets repeat a handful of addresses millions of times, so formatting the distinct values in
Python and indexing them with numpy costs almost nothing per packet.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa

_V4_MAPPED = np.uint64(0xFFFF00000000)


def _dictionary(inverse: np.ndarray, strings: list[str | None]) -> pa.DictionaryArray:
    # A null must be a null index, not a null dictionary value (Parquet cannot store that).
    values = pa.array([s if s is not None else "" for s in strings], type=pa.string())
    indices = pa.array(inverse.astype(np.int32, copy=False))
    null_at = [i for i, s in enumerate(strings) if s is None]
    if null_at:
        mask = np.isin(inverse, null_at)
        indices = pa.array(inverse.astype(np.int32, copy=False), mask=mask)
    # The indices come from np.unique or the hash encoder, in range by construction: Arrow's
    # check of every index (safe=True) would be one more pass over the column.
    return pa.DictionaryArray.from_arrays(indices, values, safe=False)


def format_ip(hi: int, lo: int) -> str:
    """One 128-bit address (IPv4-mapped for IPv4) as text."""
    text = _TEXT.get((hi, lo))
    if text is None:
        if hi == 0 and (lo >> 32) == 0xFFFF:
            text = str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
        else:
            text = str(ipaddress.IPv6Address((hi << 64) | lo))
        if len(_TEXT) >= _TEXT_MAX:  # bounded: a scan of the whole Internet must not grow it
            _TEXT.clear()
        _TEXT[(hi, lo)] = text
    return text


# Every chunk and every table formats the same few addresses again: remember them.
_TEXT: dict[tuple[int, int], str] = {}
_TEXT_MAX = 1 << 16


def ip_array(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray | None = None) -> pa.DictionaryArray:
    """Addresses as dictionary strings; rows where ``valid`` is False (no IP layer) are null.

    Without ``valid`` every row is an address, including ``::`` (all zeros).
    """
    from otsight.capture._dictenc import dict_encode_pairs

    hi = np.ascontiguousarray(hi, dtype=np.uint64)
    lo = np.ascontiguousarray(lo, dtype=np.uint64)
    if hi.shape[0] == 0:
        return _dictionary(np.empty(0, np.int32), [])
    codes, uh, ul = dict_encode_pairs(hi, lo)
    strings = [format_ip(h, v) for h, v in zip(uh.tolist(), ul.tolist(), strict=True)]
    out = _dictionary(codes, strings)
    if valid is not None and not valid.all():
        out = pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=~valid), out.dictionary, safe=False
        )
    return out


def format_mac(value: int) -> str:
    return int(value).to_bytes(6, "big").hex(":")


def mac_array(values: np.ndarray) -> pa.DictionaryArray:
    if values.shape[0] == 0:
        return _dictionary(np.empty(0, np.int32), [])
    uniq, inverse = np.unique(values, return_inverse=True)
    # 0 means "no MAC" (link types without one); 00:00:00:00:00:00 is not seen in practice
    strings: list[str | None] = [format_mac(v) if v else None for v in uniq.tolist()]
    return _dictionary(inverse.reshape(-1), strings)


def constant_string(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], type=pa.string()), safe=False
    )


def names_array(codes: np.ndarray, names: dict[int, str]) -> pa.DictionaryArray:
    """Small integer codes → their names (unknown codes become their number as text)."""
    if codes.shape[0] == 0:
        return _dictionary(np.empty(0, np.int32), [])
    uniq, inverse = np.unique(codes, return_inverse=True)
    return _dictionary(inverse.reshape(-1), [names.get(c, str(c)) for c in uniq.tolist()])
