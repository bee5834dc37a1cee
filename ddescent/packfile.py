"""Pack files, `<experiment>/.sweep/packs/<key>.json`: the runs one Hydra job trains (their configs and data
fingerprints) and their labels. ddescent.launch writes them; the job (launch.hydra_task), the SLURM launcher and
`ddescent status` (ddescent.slurm) read them."""

from __future__ import annotations

import json
from pathlib import Path

from ddescent.spec import RunSpec


def read_pack(path: str | Path) -> tuple[list[RunSpec], list[str]]:
    blob = json.loads(Path(path).read_text())
    return [RunSpec.of(r["config"], r["fingerprint"]) for r in blob["runs"]], blob["labels"]
