"""Derive the ATT&CK for ICS technique table shipped with otsight from MITRE's STIX bundle.

    python -m otsight.attack.derive ../shared/data/attack/ics-attack.json

writes ``techniques.json`` beside this file: id, name and tactics of every technique that is
neither revoked nor deprecated. MITRE's license requires its notice with every copy: it is
kept in ``LICENSE-ATTACK.txt`` beside the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = HERE / "techniques.json"


def derive(bundle_path: Path) -> dict[str, dict[str, object]]:
    bundle = json.loads(Path(bundle_path).read_text())
    out: dict[str, dict[str, object]] = {}
    for obj in bundle["objects"]:
        if obj.get("type") != "attack-pattern":
            continue
        if obj.get("revoked") or obj.get("x_mitre_deprecated"):
            continue
        ext = next(
            (
                r["external_id"]
                for r in obj.get("external_references", [])
                if r.get("source_name") == "mitre-attack"
            ),
            None,
        )
        if ext:
            out[ext] = {
                "name": obj["name"],
                "tactics": sorted(p["phase_name"] for p in obj.get("kill_chain_phases", [])),
            }
    return dict(sorted(out.items()))


def main(argv: list[str]) -> int:
    table = derive(Path(argv[0]))
    TABLE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(table)} techniques written to {TABLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
