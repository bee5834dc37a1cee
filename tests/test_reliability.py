"""A sweep can be killed at any moment and rerun; runs that diverge are recorded; writers share a folder."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import cli
from ddescent import store
from ddescent.config import compose
from ddescent.data import load
from ddescent.models import build, mlp
from ddescent.checkpoint import Checkpoint
from ddescent.metrics import per_model_loss
from ddescent.optim import make_optimizer
from ddescent.step import Step
from ddescent.train import Plan, train


def _setup(folder, seeds=(0, 1), every=2):
    """A pack of two MLPs, ready to train: net, data, step, checkpoint."""
    cfg = compose(["data.num_samples=1000", "n_train=200", "label_noise=0.1", "width=16"])
    data = load(cfg.data)
    net = mlp.pack([build(cfg.model, (40,), 10, torch.Generator().manual_seed(s)) for s in seeds])
    step = Step(net, make_optimizer(net.parameters(), cfg.optim), lambda out, y: per_model_loss(out, y).sum(), lean=True)
    return net, data, step, Checkpoint(folder, ["a", "b"], every, 6)


def _numbers(trained):
    return [[{k: v for k, v in r.items() if k != "wall_time_s"} for r in h.rows] for h in trained.histories]


class Killed(Exception):
    pass


def _killed_after(epoch):
    def watch(e, rows):
        if e == epoch:
            raise Killed  # as if killed at the end of that epoch
    return watch


def test_resumed_run_ends_with_exactly_the_uninterrupted_numbers(data_cache, tmp_path):
    plan = Plan([0, 1], 6, 32, 6)
    net, data, step, _ = _setup(tmp_path / "full", every=0)
    full = train(net, data, plan, step)

    net, data, step, ckpt = _setup(tmp_path / "cut")
    with pytest.raises(Killed):  # the last checkpoint is epoch 4's
        train(net, data, Plan([0, 1], 6, 32, 6, watch=_killed_after(5)), step, ckpt)
    assert ckpt.path.exists()
    net, data, step, ckpt = _setup(tmp_path / "cut")  # a fresh process would build these again
    resumed = train(net, data, plan, step, ckpt)
    assert _numbers(resumed) == _numbers(full)


@pytest.mark.parametrize("tamper", ["other runs", "epoch past the end", "wrong shape", "rows beyond the epoch",
                                    "generator state", "not a checkpoint"])
def test_a_checkpoint_that_does_not_fit_is_set_aside_and_the_runs_start_over(tamper, data_cache, tmp_path):
    net, data, step, _ = _setup(tmp_path / "full", every=0)
    full = train(net, data, Plan([0, 1], 6, 32, 6), step)
    net, data, step, ckpt = _setup(tmp_path)
    with pytest.raises(Killed):
        train(net, data, Plan([0, 1], 6, 32, 6, watch=_killed_after(3)), step, ckpt)  # checkpoint of epoch 2
    state = torch.load(ckpt.path, weights_only=True)
    parts = state["parts"]
    if tamper == "other runs":
        state["runs"] = ["x", "y"]
    elif tamper == "epoch past the end":
        state["epoch"] = parts["recorder"]["epoch"] = 6
    elif tamper == "wrong shape":
        key = next(iter(parts["net"]))
        parts["net"][key] = parts["net"][key][:, :-1]
    elif tamper == "rows beyond the epoch":
        rows = parts["recorder"]["histories"][0]["rows"]
        rows.append({**rows[-1], "epoch": 5})
    elif tamper == "generator state":
        parts["batches"]["generators"][0] = torch.zeros(3, dtype=torch.uint8)
    if tamper == "not a checkpoint":
        ckpt.path.write_bytes(b"garbage")
    else:
        torch.save(state, ckpt.path)
    net, data, step, ckpt = _setup(tmp_path)
    first = []
    again = train(net, data, Plan([0, 1], 6, 32, 6, watch=lambda e, rows: first.append(e)), step, ckpt)
    assert first[0] == 0  # started over, not resumed
    assert _numbers(again) == _numbers(full)  # from a clean start: nothing of the bad checkpoint leaked in
    assert len(list((tmp_path / "_damaged").glob(f"{ckpt.path.name}*.damaged"))) == 1  # moved aside, not deleted


def test_kill_minus_nine_then_rerun_leaves_every_run_once(tiny, tmp_path):
    res = tmp_path / "r"
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8,16,32", *tiny, "seed=0,1", "epochs=40",
            "train.checkpoint_every=1", "--results", str(res), "--no-plot"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = res / "fig9_9" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and not list((res / "fig9_9").glob("_checkpoints/*.pt")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(runs))
    assert len(files) == 8 and all(f.endswith(".parquet") and not f.startswith(".") for f in files)
    df = store.load(res / "fig9_9")
    assert df.groupby("run_id")["epoch"].max().eq(40).all()
    assert not df.duplicated(["run_id", "epoch"]).any()
    assert not list((res / "fig9_9" / "_checkpoints").glob("*"))  # finished runs leave no checkpoint
    trained = [t["run_id"] for t in store.trainings(res / "fig9_9")]
    assert set(trained) == set(df.run_id) and len(trained) <= 8 + 8  # nothing trained more than twice



def test_stale_temporaries_of_dead_writers_are_removed(tiny, tmp_path):
    runs = tmp_path / "r" / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    token = store.process_token(int(dead.stdout))  # "<pid>-0": no such process now
    stale = runs / f".abc.{store.HOST}.{token}.xyz.tmp"
    lock = runs / f".abc.{store.HOST}.{token}.lock"
    lock.touch()
    stale.write_bytes(b"half")
    r = cli("sweep", "width=4", *tiny, "--results", str(tmp_path / "r"), "--no-plot")
    assert r.returncode == 0 and not stale.exists() and not lock.exists()


def test_diverging_run_is_recorded_and_the_sweep_goes_on(tiny, tmp_path):
    res = tmp_path / "r"
    r = cli("sweep", "width=8", "optim.lr=0.01,1e6", *tiny, "--results", str(res))
    assert r.returncode == 0, r.stderr
    df = store.load(res / "fig9_9")
    lr = df.config.map(lambda c: json.loads(c)["optim"]["lr"])
    assert set(df.status[lr == 0.01]) == {"complete"} and set(df.status[lr == 1e6]) == {"diverged"}
    diverged = df[lr == 1e6]
    assert diverged.epoch.max() < 3 or not np.isfinite(diverged.train_loss.iloc[-1])  # stopped, recorded at NaN
    assert "diverged" in cli("ls", str(res / "fig9_9")).stdout
    figures = res / "fig9_9" / "_figures"
    assert (figures / "fig9_10.png").exists()  # the figure its records allow is drawn from the complete run
    assert not (figures / "fig9_9.png").exists()  # one width: no model-wise figure (it would show a lone dot)


def test_concurrent_sweeps_share_a_folder_without_doubling(tiny, tmp_path):
    res = tmp_path / "r"
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8", *tiny, "seed=0,1,2", "epochs=20",
            "--results", str(res), "--no-plot"]
    procs = [subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    codes = [p.wait() for p in procs]
    # each exits 0, or 3 when the other was still training some of its runs when it finished
    assert set(codes) <= {0, 3} and 0 in codes, codes
    files = os.listdir(res / "fig9_9" / "runs")
    assert len(files) == 6 and all(not f.startswith(".") for f in files)
    trained = [t["run_id"] for t in store.trainings(res / "fig9_9")]
    assert sorted(trained) == sorted(f[:-len(".parquet")] for f in files)  # each run trained once, not twice


def test_early_stopping_chooses_by_validation_only(tiny, tmp_path):
    r = cli("sweep", "width=64", *tiny, "epochs=60", "train.eval_points=200", "val_fraction=0.2",
            "train.patience=5", "optim=adam", "optim.lr=0.01", "label_noise=0.3", "--results", str(tmp_path),
            "--no-plot")
    assert r.returncode == 0, r.stderr
    df = store.load(tmp_path).sort_values("epoch")
    assert df.val_loss.notna().all() and df.n_train.iloc[0] == 200
    best = int(df.best_epoch.iloc[0])
    assert df.epoch.max() == best + 5  # stopped once patience ran out
    # every epoch was evaluated (eval_points >= epochs): the choice is the epoch of least validation loss, and the
    # test error reported for it is the test error recorded at that epoch
    rows = df.set_index("epoch")
    assert best == int(rows.val_loss.idxmin())
    assert df.early_stopped_test_error.iloc[0] == rows.test_error[best]
    assert int(rows.test_loss.idxmin()) != best  # so choosing by the test set would have shown


def test_a_pack_killed_while_writing_its_files_resumes_its_missing_run_from_the_checkpoint(tiny, tmp_path):
    """Files are written before the checkpoint is dropped: a kill between two files of a pack leaves the checkpoint,
    and the rerun resumes the missing run from it (the done ones train along, their files untouched). With the pack's
    final state kept (train.keep_final), the rerun trains nothing: it writes the file from that state."""
    res = tmp_path / "r"
    args = ["sweep", "width=4,8,16", *tiny, "epochs=6", "train.checkpoint_every=1", "--results", str(res), "--no-plot"]
    assert cli(*args, "train.keep_checkpoints=true").returncode == 0  # as if killed right after the last file
    runs = sorted((res / "fig9_9" / "runs").glob("*.parquet"))
    assert len(runs) == 3 and len(list((res / "fig9_9" / "_checkpoints").glob("*.pt"))) == 1
    before = store.load(runs[1])
    runs[1].unlink()  # ... or right before it
    others = {p: p.stat().st_mtime_ns for p in (runs[0], runs[2])}
    r = cli(*args, "train.keep_final=false")  # (the final state is not read: the checkpoint is)
    assert r.returncode == 0, r.stderr
    assert "and 2 more: resumed from its checkpoint at epoch 5 of 6" in r.stderr and "1 to run" in r.stderr
    after = store.load(runs[1])
    numbers = ["epoch", "train_error", "train_loss", "test_error", "test_loss"]
    assert after[numbers].equals(before[numbers])
    assert {p: p.stat().st_mtime_ns for p in others} == others  # the done runs' files are not written again
    assert not list((res / "fig9_9" / "_checkpoints").glob("*"))

    runs[1].unlink()  # again; this time the final state is read: nothing is trained
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert "writing them from its kept final state (epoch 6 of 6), without training" in r.stderr
    assert store.load(runs[1])[numbers].equals(before[numbers])
    assert {p: p.stat().st_mtime_ns for p in others} == others
