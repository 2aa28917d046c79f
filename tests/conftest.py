"""Shared fixtures: the real-capture corpus, tshark, and the project's own sample captures.

Tests that need ``../shared/corpus`` or tshark skip with a reason on a user's machine where
they are absent, and fail when ``CI=true`` (CI must never pass by skipping them).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("OTSIGHT_CORPUS", ROOT.parent / "shared" / "corpus"))
IN_CI = os.environ.get("CI", "").lower() == "true"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def _need(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true but is missing")
    pytest.skip(f"{what} not available on this machine")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-capture corpus (skips when absent, fails in CI)."""
    _need((CORPUS / "MANIFEST.tsv").is_file(), f"the capture corpus at {CORPUS}")
    return CORPUS


def manifest_rows() -> list[dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_captures() -> list[dict[str, str]]:
    return [r for r in manifest_rows() if r["local_path"].endswith(CAPTURE_SUFFIXES)]


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    _need(path is not None, "tshark (Debian package tshark)")
    assert path
    return path


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """The project's own generated captures (no third-party data): pcap, pcapng, gzip."""
    from otsight.testing.samples import write_sample_capture

    out = tmp_path_factory.mktemp("samples")
    paths = {
        "pcap": out / "sample.pcap",
        "pcapng": out / "sample.pcapng",
        "gz": out / "sample.pcap.gz",
    }
    truth = write_sample_capture(paths["pcap"], seed=0, fmt="pcap")
    write_sample_capture(paths["pcapng"], seed=0, fmt="pcapng")
    write_sample_capture(paths["gz"], seed=0, fmt="pcap", gzip=True)
    paths_truth = dict(paths)
    paths_truth["truth"] = truth  # type: ignore[assignment]
    return paths_truth
