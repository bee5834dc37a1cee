"""A new user's first day (issue 24): a misspelt `+key`, `~group`, a preset whose `# @package` line is not first,
dry-run lines that tell the jobs apart, and SLURM from a login node without GPUs."""

import subprocess
import sys

import pytest
import torch

from conftest import cli

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def _one_line_exit_2(r, *words):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- strict overrides (rows 8, 9)


@pytest.mark.parametrize("command,added,close", [
    (["sweep", "+optim.momentun=0.5"], "optim has no key momentun", "optim.momentum"),
    (["sweep", "+optim.momentun=0.1,0.5"], "optim has no key momentun", "optim.momentum"),
    (["sweep", "+widht=8"], "no top-level key widht", "width"),
    (["sweep", "model=cnn1d", "+model.depth=2"], "model has no key depth", "model.width"),
    (["run", "+optim.momentun=0.5"], "optim has no key momentun", "optim.momentum"),
])
def test_a_key_added_that_nothing_reads_is_one_line_naming_the_closest_and_nothing_is_trained(
        command, added, close, tiny, tmp_path):
    r = cli(*command, *tiny, "width=4", "--results", str(tmp_path / "r"))
    line = _one_line_exit_2(r, added, f"did you mean {close}?", "++")
    assert f"error: {command[-1].split('=', 1)[0]}: " in line  # the override as typed comes first
    assert not (tmp_path / "r").exists()


def test_a_key_a_component_declares_and_a_key_marked_as_ones_own_are_added(tiny, tmp_path, monkeypatch):
    from ddescent import optim
    from ddescent.checks import NONNEG
    from ddescent.config import expand

    monkeypatch.setitem(optim.RULES, "optim.dampening", NONNEG)  # declared by a rule, absent from sgd.yaml
    assert expand(["width=4", "seed=0", "+optim.dampening=0.1"]) == [["width=4", "seed=0", "+optim.dampening=0.1"]]
    r = cli("sweep", *tiny, "width=4", "++optim.momentun=0.5", "--results", str(tmp_path / "r"), "--dry-run")
    assert r.returncode == 0 and "1 jobs" in r.stdout, r.stderr


@pytest.mark.parametrize("removed,advice", [
    ("~regularizer", "choose regularizer=none instead"),
    ("~logger", "choose logger=none instead"),
    ("~model", "options: cnn1d"),
    ("~train.patience", "set train.patience=... instead"),
])
def test_removing_a_group_or_a_key_is_one_line_saying_what_to_do_instead(removed, advice, tiny, tmp_path):
    r = cli("sweep", *tiny, "width=4", removed, "--results", str(tmp_path / "r"))
    _one_line_exit_2(r, removed, advice)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- a preset of one's own (row 1)

# The README's example preset (Writing your own experiment), with its path as a comment above the header.
PRESET = """\
# myconf/experiment/my_cnn_sweep.yaml
# @package _global_
defaults:
  - override /model: cnn1d
  - override /optim: adam

name: my_cnn_sweep            # results go to results/my_cnn_sweep/
epochs: 200
label_noise: 0.2
n_train: 2000
optim:
  lr: 1.0e-3
figures: ["9.9", "9.10", "heatmap"]   # drawn at the end of the sweep

hydra:
  sweeper:
    params:
      width: 2,4,8,16,32,64
      seed: 0,1,2
"""


def test_a_package_line_below_a_comment_is_named_with_its_fix(tmp_path, data_cache):
    """Hydra 1.3 reads `# @package` only among the file's leading `# @` lines: the comment above it leaves the
    preset in package `experiment`, where its `override /model` fails. The error names the file and the fix, not
    Hydra's 'prefix it with +'; with the lines swapped the preset plans its 18 jobs."""
    path = tmp_path / "myconf" / "experiment" / "my_cnn_sweep.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PRESET)
    args = ("sweep", "--config-dir", "myconf", "experiment=my_cnn_sweep", "--dry-run")
    line = _one_line_exit_2(cli(*args, cwd=tmp_path), "myconf/experiment/my_cnn_sweep.yaml",
                            "`# @package _global_` must be the file's first line")
    assert "prefix" not in line
    first, second, rest = PRESET.split("\n", 2)
    path.write_text(f"{second}\n{first}\n{rest}")
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 0 and "18 jobs" in r.stdout, r.stderr


def test_a_preset_without_its_package_line_is_told_to_add_it(tmp_path, data_cache):
    path = tmp_path / "mine" / "experiment" / "bare.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PRESET.split("\n", 2)[2])
    r = cli("sweep", "--config-dir", str(tmp_path / "mine"), "experiment=bare", "--dry-run")
    line = _one_line_exit_2(r, "experiment/bare", "make `# @package _global_` the file's first line")
    assert "prefix" not in line


# ----------------------------------------------------------------------------- dry-run lines (row 5)


def test_each_dry_run_line_of_fig9_10_tells_its_job_apart(tmp_path, data_cache):
    r = cli("sweep", "experiment=fig9_10", "--dry-run", "--results", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    jobs = [ln.split("  ", 2)[2] for ln in r.stdout.splitlines() if "  pending  " in ln]
    assert len(jobs) == 6 and len(set(jobs)) == len(jobs), jobs
    assert all("data_seed=" in j and "model.block_lr=" in j for j in jobs)


# ----------------------------------------------------------------------------- SLURM (rows 6, 7)


@pytest.mark.parametrize("overrides,gpus", [
    (["hydra/launcher=slurm"], 1),
    (["hydra/launcher=slurm", "train.device=cpu"], 0),
    (["hydra/launcher=slurm", "train.device=cuda:1"], 2),
    (["hydra/launcher=slurm", "train.device=cpu", "hydra.launcher.gpus_per_node=3"], 3),
    (["hydra/launcher=slurm_cpu"], 0),
])
def test_the_slurm_presets_ask_for_the_gpus_the_device_needs(overrides, gpus):
    from ddescent.config import compose

    launcher = compose(overrides, hydra=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.gpus_per_node == gpus


def test_a_cpu_sweep_submits_without_asking_for_a_gpu(tiny, tmp_path, monkeypatch):
    """The launcher is built from the sweep's own device (the job config Hydra composes for the launcher is
    otherwise the default, train.device=auto)."""
    from ddescent.slurm import SlurmLauncher

    seen = {}

    def launch(self, job_overrides, initial_job_idx):  # stands in for sbatch: records what it would ask for
        seen.update(self.params)
        return []

    monkeypatch.setattr(SlurmLauncher, "launch", launch)
    cli("sweep", *tiny, "width=4", "train.device=cpu", "hydra/launcher=slurm", "--results", str(tmp_path / "r"),
        "--no-plot")
    assert seen["gpus_per_node"] == 0 and seen["cpus_per_task"] == 8


@NO_CUDA
def test_cuda_is_not_required_of_the_host_that_submits_to_slurm(tiny, tmp_path):
    r = cli("sweep", *tiny, "width=4", "train.device=cuda", "hydra/launcher=slurm", "--results",
            str(tmp_path / "r"), "--dry-run", "--no-memory-check")
    assert r.returncode == 0 and "1 jobs" in r.stdout, r.stderr
    assert "train.device=cuda: CUDA is not available here" in r.stderr and "on the node that runs it" in r.stderr
    r = cli("sweep", *tiny, "width=4", "train.device=cuda", "hydra/launcher=submitit_local", "--results",
            str(tmp_path / "r"), "--dry-run", "--no-memory-check")
    _one_line_exit_2(r, "train.device=cuda: CUDA is not available here")  # this machine runs those jobs


@NO_CUDA
def test_cuda_on_a_cpu_submitter_passes_the_memory_check_too(tiny, tmp_path):
    r = cli("sweep", *tiny, "width=4", "train.device=cuda", "hydra/launcher=slurm", "--results",
            str(tmp_path / "r"), "--dry-run")
    assert r.returncode == 0, r.stderr


@NO_CUDA
def test_the_job_checks_its_device_on_the_node_that_runs_it(tiny, tmp_path):
    from omegaconf import OmegaConf

    from ddescent import ConfigError
    from ddescent.launch import hydra_task, write_packs
    from ddescent.planner import plan

    jobs = plan([*tiny, "width=4", "train.device=cuda", "hydra/launcher=slurm"], str(tmp_path / "r"),
                memory_check=False)
    [pack] = write_packs([jobs])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(ConfigError, match=r"^train.device=cuda: CUDA is not available here"):
            hydra_task(OmegaConf.create({"launch": {"pack": str(pack)}}))
    finally:
        torch.set_num_threads(threads)
    assert pack.exists()  # the work stays for a job on a node with a GPU


# ----------------------------------------------------------------------------- speed of reading (row 12, item 7)

READ_WITHOUT_TORCH = """
import sys
from ddescent.cli import main
for args in sys.argv[1:]:
    sys.argv = ["ddescent", *args.split("|")]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
    print("TORCH", args.split("|")[0], "torch" in sys.modules)
"""


def test_reading_a_linear_experiment_imports_no_torch(tmp_path, data_cache):
    """`plot`, `figures` and `ls` of fig9_10 (a linear student, its theory computed in numpy) never import torch:
    importing it is over a second of every read (issue 24, item 7)."""
    res = tmp_path / "r"
    assert cli("sweep", "experiment=fig9_10", "data_seed=0,1", "model.block_lr=null", "epochs=3000",
               "--results", str(res), "--no-plot", "-q").returncode == 0  # (the theory is first computed below)
    folder = res / "fig9_10"
    r = subprocess.run([sys.executable, "-c", READ_WITHOUT_TORCH, f"plot|{folder}|-o|{tmp_path / 'a.png'}",
                        f"figures|{folder}|--out-dir|{tmp_path / 'figs'}", f"ls|{folder}", f"ls|{res}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stdout.splitlines() if line.startswith("TORCH")]
    assert said == ["TORCH plot False", "TORCH figures False", "TORCH ls False", "TORCH ls False"], r.stdout
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "figs" / "fig9_10.png").exists()


# ----------------------------------------------------------------------------- -q through Hydra's launchers (row 17)


@pytest.mark.parametrize("launch", [["--jobs", "2"], ["hydra/launcher=basic"]])
def test_quiet_silences_hydras_own_lines_and_the_jobs_on_this_machine(launch, tiny, tmp_path):
    r = cli("sweep", *tiny, "width=2,4", *launch, "-q", "--no-plot", "--results", str(tmp_path / "r"), process=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout + r.stderr == "", r.stdout + r.stderr  # no `[HYDRA] Launching ...`, no job's log lines
    assert len(list((tmp_path / "r" / "fig9_9" / "runs").glob("*.parquet"))) == 2
