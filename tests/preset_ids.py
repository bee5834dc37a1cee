"""Every preset's planned run_ids, over the deterministic stand-in datasets of fake_data.

    python tests/preset_ids.py > tests/fixtures/preset_run_ids.json    # record (only when ids change on purpose)

tests/test_identity.py compares against the recorded file: a change of structure must not change what a run is."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


def preset_ids(root: Path) -> dict[str, list[str]]:
    from fake_data import write_all

    from ddescent.planner import plan

    write_all(root / "data")
    os.environ["DDESCENT_DATA"] = str(root / "data")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")  # content hashes of this tree only
    out = {}
    for preset in PRESETS:
        out[preset] = sorted(j.spec.run_id for j in plan([f"experiment={preset}"], str(root / "results")))
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(preset_ids(Path(tmp)), indent=1, sort_keys=True))
