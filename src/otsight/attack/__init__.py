"""ATT&CK for ICS, as data: the technique table (derived from MITRE's bundle) and lookups.

© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of
The MITRE Corporation (see LICENSE-ATTACK.txt beside this file).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_TABLE = Path(__file__).resolve().parent / "techniques.json"


@cache
def techniques() -> dict[str, dict[str, object]]:
    """Technique id → {name, tactics} for every active ATT&CK for ICS technique."""
    return json.loads(_TABLE.read_text())


def check_ids(ids: set[str] | list[str] | tuple[str, ...], where: str) -> None:
    """Raise ValueError naming ``where`` if any id is not an active technique."""
    unknown = sorted(set(ids) - set(techniques()))
    if unknown:
        raise ValueError(f"{where}: unknown or inactive ATT&CK for ICS technique ids {unknown}")
