"""The SLURM path against a real scheduler: a single-node SLURM brought up by scripts/slurm_local.sh (Debian's
slurm-wlm and munge; root). Run with:

    scripts/slurm_local.sh up && python -m pytest -m slurm      # about a minute; scripts/slurm_local.sh down after

Each test uses the README's tuned launcher (hydra/launcher=slurm) with the lines a user edits for this node."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddescent import store

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
NODE = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10"]
TINY = ["data.num_samples=1000", "n_train=200", "train.eval_points=5", "progress=off", "--no-plot"]
PLAIN = ["train.eval_points=1", "progress=off", "--no-plot"]


@pytest.fixture(scope="module", autouse=True)
def slurm():
    if shutil.which("sbatch") is None or subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        up = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "up"], capture_output=True, text=True)
        if up.returncode != 0:
            pytest.skip(f"no SLURM here and scripts/slurm_local.sh up failed: {up.stderr[-300:]}")
    yield


def sweep(*args, results, env=None, tiny=TINY, node=NODE):
    return subprocess.Popen([sys.executable, "-m", "ddescent", "sweep", *args, *node, *tiny, "--results", str(results)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def jobs() -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True).stdout.split()


def status(results) -> str:
    r = subprocess.run([sys.executable, "-m", "ddescent", "status", str(results)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def numbers(results):
    cols = ["train_error", "test_error", "train_loss", "test_loss"]
    return store.load(results).set_index(["run_id", "epoch"]).sort_index()[cols]


def test_the_tuned_launcher_runs_a_sweep_and_reports_each_run(tmp_path):
    p = sweep("width=4,8", "seed=0", "epochs=5", results=tmp_path / "r")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert store.load(tmp_path / "r").run_id.nunique() == 2
    lines = [line for line in err.splitlines() if "complete, train error" in line]
    assert len(lines) == 2 and any("width=4 " in line for line in lines) and "[2/2" in err


def test_a_requeued_job_resumes_and_ends_with_the_uninterrupted_numbers(tmp_path):
    args = ["width=4,8", "seed=0", "epochs=3000", "train.checkpoint_every=50"]
    p = sweep(*args, results=tmp_path / "r")
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "r" / "fig9_9" / "_checkpoints").glob("*.pt")):
        time.sleep(0.2)
    (job,) = jobs()
    subprocess.run(["scontrol", "requeue", job], check=True)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    trainings = store.trainings(tmp_path / "r" / "fig9_9")
    assert len(trainings) == 4  # each run started twice: before and after the requeue
    # the submitter said so while it waited, and each run line gives the run's own training time
    assert re.search(rf"job {job} \(mlp width=\d .* and 1 more\) requeued \(start 2\); its last checkpoint is at "
                     r"epoch \d+\n", err), err
    said = {m.group(1): float(m.group(2)) for m in re.finditer(r"(width=\d) .*: complete, .*, ([\d.]+) s\n", err)}
    last = store.load(tmp_path / "r").sort_values("epoch").groupby("width").last()
    assert said == {f"width={w:g}": round(t, 1) for w, t in last["wall_time_s"].items()} and min(said.values()) > 0
    # the same pack, trained without interruption with the job's one thread
    ref = subprocess.run([sys.executable, "-m", "ddescent", "sweep", *args, *TINY, "--results", str(tmp_path / "ref")],
                         capture_output=True, text=True, env={**os.environ, "SLURM_CPUS_PER_TASK": "1"})
    assert ref.returncode == 0, ref.stderr
    assert numbers(tmp_path / "r").equals(numbers(tmp_path / "ref"))


def test_a_job_that_raises_is_reported_by_its_runs_and_the_sweep_exits_1(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_data import write_mnist

    data = tmp_path / "data"
    write_mnist(data / "mnist", n_train=40)
    # the job's setup removes the data that planning checked: the job raises
    p = sweep("data=mnist", "width=4,8", "seed=0", "epochs=1", "n_train=20", "train.batch_size=10", "name=m",
              f"data.root={data}", f"hydra.launcher.setup=['rm -rf {data}']", results=tmp_path / "r", tiny=PLAIN)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, err
    failed = [line for line in err.splitlines() if "FAILED" in line]
    assert any("width=4 " in line for line in failed) and any("width=8 " in line for line in failed)
    assert err.strip().splitlines()[-1].startswith("ddescent: error: 2 run(s) failed")


def test_interrupting_the_submitter_leaves_the_running_job_to_finish(tmp_path):
    p = sweep("width=4", "seed=0", "epochs=1500", results=tmp_path / "r")
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "r" / "fig9_9" / "_logs" / "trainings.jsonl").exists():
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    deadline = time.time() + 300
    while time.time() < deadline and jobs():
        time.sleep(1)
    assert store.load(tmp_path / "r").run_id.nunique() == 1  # the job found its pack and wrote its run


@pytest.mark.parametrize("bad,said", [
    ("hydra.launcher.gpus_per_node=1", "sbatch: error: Invalid generic resource (gres) specification"),
    ("hydra.launcher.partition=nothere", "sbatch: error: invalid partition specified: nothere"),
])
def test_an_sbatch_refusal_is_reported_as_not_submitted(tmp_path, bad, said):
    p = sweep("width=4,8", "epochs=5", results=tmp_path / "r", node=NODE + [bad])
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert f"not submitted: {said}" in err and "did not complete" not in err and "stopped waiting" not in err, err
    assert err.strip().splitlines()[-1].startswith("ddescent: error: 6 run(s) failed"), err
    assert not jobs()
    shown = status(tmp_path / "r")
    assert "6 run(s) pending in 0 job(s)" in shown and shown.count("NOT SUBMITTED") == 6 and said in shown, shown


def test_a_failing_setup_line_fails_the_job_and_its_log_is_named(tmp_path):
    p = sweep("width=4,8", "epochs=5", "hydra.launcher.setup=['echo ready','module load nothere']",
              results=tmp_path / "r")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, err
    line = next(line for line in err.splitlines() if " ended FAILED: " in line)
    assert "the setup line 'module load nothere' failed with exit code 127" in line, err
    log = Path(re.search(r"its log: (\S+)$", line).group(1))
    assert log.name.endswith("_log.err") and "module: command not found" in log.read_text()
    job = re.search(r"job (\S+) \(", line).group(1)
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State,ExitCode", "-j", job], capture_output=True,
                           text=True).stdout.split()
    assert state == ["FAILED|127:0"], state
    assert not (tmp_path / "r" / "fig9_9" / "runs").exists() or not list((tmp_path / "r" / "fig9_9" / "runs").iterdir())
    assert str(log) in err.strip().splitlines()[-1]  # the exit line names it too


def test_status_shows_the_jobs_of_a_no_wait_sweep(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ddescent", "sweep", "--no-wait", "width=4,8", "seed=0",
                        "epochs=30000", "train.checkpoint_every=500", *NODE, *TINY, "--results", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ddescent status" in r.stdout, r.stderr
    submitter_log = Path(re.search(r"its log: (\S+)", r.stdout).group(1))
    row = re.compile(r"^  mlp width=(\d) .* (\d+) +RUNNING +(\d+)/30000 +~(\d+):(\d\d)$", re.M)
    deadline, shown = time.time() + 180, ""
    while time.time() < deadline and len(row.findall(shown)) < 2:
        time.sleep(1)
        shown = status(tmp_path / "r")
    rows = row.findall(shown)
    assert len(rows) == 2 and "2 run(s) pending in 1 job(s), 0 done (job states from sacct)" in shown, shown
    (job,) = jobs()
    assert {r[1] for r in rows} == {job} and all(0 < int(r[2]) < 30000 for r in rows)
    subprocess.run(["scancel", job], check=True)
    deadline = time.time() + 120
    while time.time() < deadline and "ddescent: error:" not in submitter_log.read_text():
        time.sleep(1)
    assert f"job {job} (" in submitter_log.read_text() and "ended CANCELLED" in submitter_log.read_text()
    shown = status(tmp_path / "r")
    assert len(re.findall(r"^  mlp width=\d .* CANCELLED +\d+/30000 +-$", shown, re.M)) == 2, shown
    assert f"its job {job} ended CANCELLED without a result; its log: " in shown, shown


def test_the_readmes_cpu_cluster_example_runs_as_written(tmp_path):
    """The README's block for a partition without GPUs, with this node's partition and a scratch results folder
    (the lines a user edits), and the sweep cut to two tiny runs."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in text.split("```bash\n")[1:] if "hydra/launcher=slurm_cpu" in b.split("```")[0])
    command = shlex.split(block.split("```")[0].replace("\\\n", " "))
    assert command[:2] == ["ddescent", "sweep"]
    edited = [("hydra.launcher.partition=debug" if a.startswith("hydra.launcher.partition=") else a)
              for a in command[2:]]
    results = edited.index("--results")
    edited[results + 1] = str(tmp_path / "r")
    r = subprocess.run([sys.executable, "-m", "ddescent", "sweep", *edited, "width=4,8", "seed=0", "epochs=3",
                        *TINY], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert store.load(tmp_path / "r").run_id.nunique() == 2
