"""A sweep can be killed at any moment and rerun; runs that diverge are recorded; writers share a folder."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from conftest import cli
from ddescent import store
from ddescent.config import compose
from ddescent.data import load
from ddescent.models import build, mlp
from ddescent.train import make_optimizer, train


def _setup(seed=0):
    cfg = compose(["data.num_samples=1000", "n_train=200", "label_noise=0.1", "width=16"])
    data = load(cfg.data)
    net = mlp.pack([build(cfg.model, (40,), 10, torch.Generator().manual_seed(s)) for s in (seed, seed + 1)])
    return data, net, make_optimizer(net.parameters(), cfg.optim)


def test_resumed_run_ends_with_exactly_the_uninterrupted_numbers(data_cache):
    data, net, opt = _setup()
    states = {}
    full = train(net, data, seeds=[0, 1], epochs=6, batch_size=32, eval_points=6, optimizer=opt,
                 checkpoint_every=2, save=lambda s: states.setdefault(s["epoch"], _roundtrip(s)))
    assert sorted(states) == [2, 4]
    data, net, opt = _setup()  # a fresh process would build these again
    resumed = train(net, data, seeds=[0, 1], epochs=6, batch_size=32, eval_points=6, optimizer=opt,
                    resume=states[4])

    def numbers(h):
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in h.rows]

    for a, b in zip(full, resumed):
        assert numbers(a) == numbers(b)


def _roundtrip(state):
    """Through the bytes a checkpoint file holds, loaded as the runner loads it."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_kill_minus_nine_then_rerun_leaves_every_run_once(tiny, tmp_path):
    res = tmp_path / "r"
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8,16,32", "seed=0,1", *tiny, "epochs=40",
            "train.checkpoint_every=1", "--results", str(res), "--no-plot"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = res / "fig9_9" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and not list((res / "fig9_9").glob("checkpoints/*.pt")):
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
    assert not list((res / "fig9_9" / "checkpoints").glob("*"))  # finished runs leave no checkpoint


def test_stale_temporaries_of_dead_writers_are_removed(tiny, tmp_path):
    runs = tmp_path / "r" / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = runs / f".abc.{store.HOST}.{dead.stdout.strip()}.xyz.tmp"
    lock = runs / f".abc.{store.HOST}.{dead.stdout.strip()}.lock"
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
    assert (res / "fig9_9" / "fig9_9.png").exists()  # the figure is drawn from the complete run


def test_concurrent_sweeps_share_a_folder_without_doubling(tiny, tmp_path):
    res = tmp_path / "r"
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8", "seed=0,1,2", *tiny, "epochs=20",
            "--results", str(res), "--no-plot"]
    procs = [subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    assert all(p.wait() == 0 for p in procs)
    files = os.listdir(res / "fig9_9" / "runs")
    assert len(files) == 6 and all(not f.startswith(".") for f in files)


def test_early_stopping_chooses_by_validation_only(tiny, tmp_path):
    r = cli("sweep", "width=64", *tiny, "epochs=60", "val_fraction=0.2", "train.patience=5", "optim=adam",
            "optim.lr=0.01", "label_noise=0.3", "--results", str(tmp_path), "--no-plot")
    assert r.returncode == 0, r.stderr
    df = store.load(tmp_path)
    assert df.val_loss.notna().all() and df.n_train.iloc[0] == 200
    best = int(df.best_epoch.iloc[0])
    assert 1 <= best <= df.epoch.max()
    assert df.epoch.max() <= best + 5  # stopped once patience ran out
    assert 0 < df.early_stopped_test_error.iloc[0] < 1
