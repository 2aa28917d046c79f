"""Numba set-up shared by every kernel module.

Kernels are compiled once and cached on disk. Inside an installed package the source folder
may be read-only, so the cache lives in the user's cache directory unless NUMBA_CACHE_DIR is
already set. This module must be imported before numba itself.
"""

from __future__ import annotations

import os
from pathlib import Path

_CACHE_ENV = "NUMBA_CACHE_DIR"


def _source_digest() -> str:
    """A digest of the source files whose kernels inline one another.

    numba keys its cache on each kernel's own file, but the flow kernel inlines the framers
    from another module: a change there would leave a stale compiled kernel. One cache
    folder per state of those sources avoids that.
    """
    import hashlib

    src = Path(__file__).resolve().parent
    h = hashlib.sha1()
    # The capture kernels inline each other across modules; protocol dissectors only inline
    # within their own module, which numba's per-file cache key already covers.
    shared = [*sorted((src / "capture").glob("*.py")), src / "dissect" / "_l2l4.py"]
    for path in shared:
        st = path.stat()
        h.update(f"{path.relative_to(src)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where compiled kernels are kept between runs."""
    configured = os.environ.get(_CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otsight" / "numba" / _source_digest()


def _prepare() -> None:
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # numba falls back to no caching; correctness is unaffected
    os.environ.setdefault(_CACHE_ENV, str(path))


_prepare()

from typing import Any  # noqa: E402

from numba import njit as _numba_njit  # noqa: E402  (must follow the cache set-up)

__all__ = ["njit", "cache_dir", "kernels_cached"]


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit``, loosely typed: kernels are checked against their tests and naive
    twins, and numba's own stubs do not know every option used here (``_nrt``)."""
    return _numba_njit(*args, **kwargs)


def kernels_cached() -> bool:
    """True when compiled kernels for this otsight and numba version are on disk."""
    return _stamp().exists()


def mark_kernels_cached() -> None:
    """Record that every kernel has been compiled into the cache."""
    stamp = _stamp()
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text("ok\n")
    except OSError:
        pass


def _stamp() -> Path:
    import numba

    from otsight import __version__

    return cache_dir() / f"otsight-{__version__}-numba-{numba.__version__}.stamp"
