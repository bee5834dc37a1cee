"""The measurement scripts run (on a CPU, in their smoke-test sizes): a script that rots is found here, not on
the GPU session that needed it."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(*args, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_bench_gpu_quick_runs_every_part_without_a_failure(tmp_path):
    r = _script(str(ROOT / "scripts" / "bench_gpu.py"), "--out", "q.json", "--quick", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FAILED" not in r.stdout, r.stdout[-3000:]
    result = json.loads((tmp_path / "q.json").read_text())
    assert result  # every part wrote its numbers


def test_measure_pack_costs_quick_writes_an_entry_the_planner_reads(tmp_path):
    r = _script(str(ROOT / "scripts" / "measure_pack_costs.py"), "costs.json", "--device", "cpu", "--quick",
                "--families", "mlp,cnn1d", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    costs = json.loads((tmp_path / "costs.json").read_text())
    shipped = json.loads((ROOT / "ddescent" / "pack_costs.json").read_text())
    assert list(costs) == ["cpu"] and set(costs["cpu"]) >= set(shipped["cpu"])  # what ddescent.packing reads
    assert costs["cpu"]["step_overhead_s"] > 0 and costs["cpu"]["flops_per_s"] > 0
