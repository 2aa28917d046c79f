"""Let the C allocator keep the memory it frees, so each chunk reuses the last one's pages.

Every chunk allocates the same large arrays again (kernel outputs, columns of tens of MB).
glibc serves blocks above its mmap threshold with fresh mappings and unmaps them on free, so
each chunk would pay a page fault and the kernel's zeroing for every 4 KiB of every array:
measured on 4 M packets, about an eighth of the decode time. Raising the mmap and trim
thresholds keeps freed blocks in the heap for the next chunk. Peak memory is unchanged (the
same arrays are live at the peak); only the return of memory to the system is deferred
until the process ends.

numpy also asks for transparent huge pages on every array of 4 MiB or more. On a virtual
machine whose memory the host hands out lazily, the first touch of each 2 MiB page is very
slow, and a run touches its peak heap for the first time while it decodes: measured on 4 M
packets (one core), turning the advice off took the decode from 1.04-1.12 to 1.25-1.30 M
packets/s. Once the heap is warm, huge pages gained at most 10% on the CIP kernel.

Buffers that outlive a chunk (flow state, reassembly outputs, pairing tables) live outside
the heap (:func:`zeroed`). In it, a buffer allocated mid-run pins the middle of the space
the chunks' short-lived arrays used: the next chunk's arrays no longer fit there, and the
heap grows (every new page a page fault). Measured on 4 M packets: the heap grew from 429
to 564 MB over the run with them inside; from 283 to 306 MB without (and with each chunk's
arrays dropped before the next chunk is read), peak RSS 798 → 670 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import mmap
import sys

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from (and go back to) the heap


def zeroed(shape: int | tuple[int, ...], dtype) -> np.ndarray:
    """A zero-filled C-ordered array on its own anonymous mapping, outside the heap: the
    system zeroes each page when it is first touched, and takes the mapping back when the
    array goes. For buffers that outlive a chunk (see the module's note) and for columns
    written at a few rows only."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    # private: Python's default for an anonymous map is shared memory, slower to fault in
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    pages = mmap.mmap(-1, max(count * dtype.itemsize, 1), flags=flags)
    return np.frombuffer(pages, dtype, count).reshape(shape)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds. Returns whether it applied (glibc on Linux only;
    elsewhere nothing changes and decoding is just slower)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _no_huge_page_advice()
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
    )


def _no_huge_page_advice() -> None:
    """Stop numpy's madvise(MADV_HUGEPAGE) on large arrays (see the module's note). The
    switch is numpy's own (also reachable as NUMPY_MADVISE_HUGEPAGE=0 before import);
    a numpy without it keeps its default."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is not None:
        switch(False)
