"""otsight: open-source OT/ICS network security platform.

Heavy dependencies (numba, pyarrow, duckdb) are imported lazily by the modules that need
them, so that ``otsight --help`` stays fast.
"""

__version__ = "0.1.0"
