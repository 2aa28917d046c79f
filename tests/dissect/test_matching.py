"""Request/response pairing: ``RequestMatcher.pair`` (each response pointed at its request,
carried requests first) and ``match`` (the request's values gathered) agree with a plain
reference — the latest earlier request of the same key, across chunk boundaries."""

from __future__ import annotations

import numpy as np

from otsight.dissect.matching import NS_PER_S, RequestMatcher, _hash


def _traffic(seed: int, n: int):
    rng = np.random.default_rng(seed)
    k1 = rng.integers(0, 4, n)  # flows
    k2 = rng.integers(0, 12, n)  # transaction ids: reused, so keys repeat
    is_req = rng.random(n) < 0.55
    frame = np.arange(1, n + 1, dtype=np.int64)
    ts = frame * NS_PER_S // 1000
    payload = rng.integers(0, 1 << 40, (n, 3))
    return k1, k2, is_req, frame, ts, payload


def _reference(k1, k2, is_req, cuts):
    """Row of the latest earlier request with the same key, -1 where none (and on requests).
    Within a chunk an answered request still answers a repeated response; only unanswered
    requests are carried into the next chunk."""
    latest: dict[tuple[int, int], list] = {}  # key → [row, answered]
    src = np.full(k1.shape[0], -1, np.int64)
    for i, key in enumerate(zip(k1.tolist(), k2.tolist(), strict=True)):
        if i in cuts:
            latest = {k: v for k, v in latest.items() if not v[1]}
        if is_req[i]:
            latest[key] = [i, False]
        elif key in latest:
            src[i] = latest[key][0]
            latest[key][1] = True
    return src


def test_pair_and_match_find_the_latest_request_across_chunks():
    n, cut = 4000, [0, 700, 701, 2500, 4000]  # one chunk of a single row
    k1, k2, is_req, frame, ts, payload = _traffic(7, n)
    want = _reference(k1, k2, is_req, set(cut[1:-1]))
    assert (want >= 0).sum() > 1000 and (want < 0).sum() > 1000  # both cases exercised
    by_pair, by_match = RequestMatcher(width=3), RequestMatcher(width=3)
    from_carry = 0
    for a, b in zip(cut, cut[1:], strict=False):
        rows = slice(a, b)
        args = (k1[rows], k2[rows], is_req[rows], frame[rows], ts[rows], payload[rows])
        p = by_pair.pair(*args)
        matched, req_frame, req_ts, req_payload = by_match.match(*args)
        assert (p.matched == matched).all()
        assert (matched == (want[rows] >= 0)).all()
        got = np.flatnonzero(matched)
        expect = want[rows][got]
        assert (req_frame[got] == frame[expect]).all()
        assert (req_ts[got] == ts[expect]).all()
        assert (req_payload[got] == payload[expect]).all()
        # pair: carried requests come first, then this call's rows
        for i, e in zip(got.tolist(), expect.tolist(), strict=True):
            r = int(p.src[i])
            if r < p.carried:
                from_carry += 1
                assert p.carried_frame[r] == frame[e] and (p.carried_payload[r] == payload[e]).all()
            else:
                assert a + r - p.carried == e
    assert from_carry > 0  # some responses were answered by a request of an earlier chunk


def test_requests_older_than_the_wait_are_not_carried():
    m = RequestMatcher(width=1, max_wait_s=1.0)
    one, none = np.ones(1, np.int64), np.zeros((1, 1), np.int64)
    m.pair(one, one, np.array([True]), one, np.array([0]), none)
    # a chunk two seconds later (other traffic): the request, one second at most, is dropped
    m.pair(one + 1, one, np.array([True]), one + 1, np.array([2 * NS_PER_S]), none)
    p = m.pair(one, one, np.array([False]), one + 2, np.array([2 * NS_PER_S + 1]), none)
    assert not p.matched[0]
    # within the wait, it is still there
    m.pair(one, one, np.array([True]), one + 3, np.array([3 * NS_PER_S]), none)
    m.pair(one + 1, one, np.array([True]), one + 4, np.array([3 * NS_PER_S + 5]), none)
    p = m.pair(one, one, np.array([False]), one + 5, np.array([3 * NS_PER_S + 9]), none)
    assert p.matched[0] and p.carried_frame[p.src[0]] == 4


def test_a_reused_table_forgets_the_earlier_chunks_answered_requests():
    """Chunks of equal size reuse one table without clearing it: what an earlier chunk left
    in it (answered requests, which are not carried) must not answer a later response."""
    n, size = 6000, 500
    k1, k2, is_req, frame, ts, payload = _traffic(11, n)
    cuts = list(range(0, n + 1, size))
    want = _reference(k1, k2, is_req, set(cuts[1:-1]))
    m = RequestMatcher(width=3)
    stale = 0
    for a, b in zip(cuts, cuts[1:], strict=False):
        p = m.pair(k1[a:b], k2[a:b], is_req[a:b], frame[a:b], ts[a:b], payload[a:b])
        assert (p.matched == (want[a:b] >= 0)).all()
        # responses whose key an earlier chunk answered: in the table, but forgotten
        earlier = set(zip(k1[:a][is_req[:a]].tolist(), k2[:a][is_req[:a]].tolist(), strict=True))
        keys = zip(k1[a:b].tolist(), k2[a:b].tolist(), strict=True)
        stale += sum(1 for i, key in enumerate(keys) if want[a + i] < 0 and key in earlier)
    assert len(m._tables) == 1  # every chunk used the same table
    assert stale > 100


def _same_hash(a: int, b: int, a2: int) -> int:
    """The second key ``b2`` such that (a2, b2) and (a, b) have the same table hash: the
    hash mixes ``a * C1 ^ b * C2``, and C2 is odd, so b2 solves that for a2."""
    c1, c2, m = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, (1 << 64) - 1
    x = ((a * c1) & m) ^ ((b * c2) & m) ^ ((a2 * c1) & m)
    b2 = (x * pow(c2, -1, 1 << 64)) & m
    return b2 - (1 << 64) if b2 >= 1 << 63 else b2


def test_keys_of_the_same_hash_stay_apart():
    """A slot keeps the key's hash, not the key: a response whose key only shares the hash
    with a waiting request is not paired with it, and each of the two keys finds its own."""
    a, b = 3, 1234
    a2 = 4
    b2 = _same_hash(a, b, a2)
    assert b2 != b and _hash(np.int64(a), np.int64(b)) == _hash(np.int64(a2), np.int64(b2))
    k1 = np.array([a, a2, a2, a, a2], np.int64)
    k2 = np.array([b, b2, b2, b, b2], np.int64)
    # request (a, b); response (a2, b2) with no request of its own; request (a2, b2);
    # the two responses
    is_req = np.array([True, False, True, False, False])
    frame = np.arange(1, 6, dtype=np.int64)
    p = RequestMatcher(width=1).pair(k1, k2, is_req, frame, frame, np.zeros((5, 1), np.int64))
    assert p.matched.tolist() == [False, False, False, True, True]
    assert p.src[3] == 0 and p.src[4] == 2
