"""The store and the workers under attack (each case a failure that was once seen): nothing lost, nothing silently
skipped, nothing wrongly reused, and every bad input one line with exit code 2."""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import cli
from ddescent import store
from fake_data import write_mnist, write_parallel_text

MNIST = ["data=mnist", "model=mlp", "width=4", "epochs=1", "n_train=20", "train.eval_points=1", "progress=off",
         "name=m", "train.batch_size=10", "seed=0"]


def _ids(*args, env=None):
    r = cli("sweep", *args, "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if "pending" in line or "done" in line][:-1]


# 1. -------------------------------------------------------------- a dataset's content is part of a run's identity

def test_other_files_make_other_runs_and_moved_files_keep_their_ids(tmp_path, data_cache):
    write_mnist(tmp_path / "a" / "mnist", n_train=30, seed=1)
    write_mnist(tmp_path / "b" / "mnist", n_train=30, seed=2)  # other images, same names and shapes
    a = _ids(*MNIST, f"data.root={tmp_path / 'a'}", "--results", str(tmp_path / "r"))
    b = _ids(*MNIST, f"data.root={tmp_path / 'b'}", "--results", str(tmp_path / "r"))
    assert a != b
    shutil.move(tmp_path / "a", tmp_path / "moved")
    assert _ids(*MNIST, f"data.root={tmp_path / 'moved'}", "--results", str(tmp_path / "r")) == a
    r = cli("sweep", *MNIST, f"data.root={tmp_path / 'moved'}", "--results", str(tmp_path / "r"), "--no-plot")
    assert r.returncode == 0, r.stderr
    r = cli("sweep", *MNIST, f"data.root={tmp_path / 'b'}", "--results", str(tmp_path / "r"), "--no-plot")
    assert "0 already done, 1 to run" in r.stderr  # the old result is not reused for other data


# 2. -------------------------------------------------------------- done means a readable, complete file

def test_an_emptied_run_file_is_set_aside_and_the_run_trained_again(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4,8", *tiny, "--results", str(res), "--no-plot").returncode == 0
    victim = sorted((res / "fig9_9" / "runs").glob("*.parquet"))[0]
    victim.write_bytes(b"")
    r = cli("sweep", "width=4,8", *tiny, "--results", str(res), "--dry-run")
    assert "damaged" in r.stdout and "1 done, 1 pending" in r.stdout
    r = cli("sweep", "width=4,8", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 0 and "1 already done, 1 to run" in r.stderr, r.stderr
    assert (res / "fig9_9" / "_damaged" / f"{victim.name}.damaged").exists()
    assert store.check_run(victim, victim.stem) is None and len(store.load(res)) > 0


def test_a_folder_where_a_run_file_belongs_is_moved_aside_on_force(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot").returncode == 0
    path = next((res / "fig9_9" / "runs").glob("*.parquet"))
    path.unlink()
    path.mkdir()
    r = cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot", "--force")
    assert r.returncode == 0, r.stderr
    assert path.is_file() and (res / "fig9_9" / "_damaged" / f"{path.name}.damaged").is_dir()


# 3. -------------------------------------------------------------- locks are trusted only with a live owner

def test_a_lock_whose_owner_is_not_provably_alive_blocks_nothing(tiny, tmp_path):
    res = tmp_path / "r"
    (run_id,) = _ids("width=4", *tiny, "--results", str(res))
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    old_format = runs / f".{run_id}.{store.HOST}.{int(ended.stdout)}.lock"  # ddescent 0.1's (pid only): it ended
    old_format.touch()
    (runs / f".{run_id}.{store.HOST}.1-1.lock").touch()  # pid 1, but not the process that started then
    (runs / f".{run_id}.{store.HOST}.x1.lock").touch()  # a name no version writes
    r = cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 0 and store.is_done(res / "fig9_9", run_id), r.stderr
    assert "not a lock this version writes" in r.stderr and not old_format.exists()


def test_a_live_foreign_lock_is_named_and_the_sweep_exits_3(tiny, tmp_path):
    res = tmp_path / "r"
    (run_id,) = _ids("width=4", *tiny, "--results", str(res))
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    lock = runs / f".{run_id}.otherhost.123-456.lock"  # fresh: its owner's heartbeat is recent
    lock.touch()
    r = cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 3 and not store.is_done(res / "fig9_9", run_id)
    assert str(lock) in r.stderr and "delete the lock" in r.stderr
    old = time.time() - store.LOCK_STALE_S - 60  # no heartbeat for longer than a live owner allows
    os.utime(lock, (old, old))
    r = cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 0 and store.is_done(res / "fig9_9", run_id) and not lock.exists()


# 4. -------------------------------------------------------------- one bad file cannot break a reader

def test_files_of_the_wrong_kind_are_skipped_by_every_reader(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4,8", *tiny, "--results", str(res), "--no-plot").returncode == 0
    runs = res / "fig9_9" / "runs"
    good = pd.read_parquet(next(runs.glob("*.parquet")))
    bad = good.assign(run_id="bad000000000", status=7)  # an integer status
    bad.to_parquet(runs / "bad000000000.parquet")
    pd.DataFrame({"run_id": ["only00000000"]}).to_parquet(runs / "only00000000.parquet")
    for args in (["ls", str(res)], ["plot", str(res / "fig9_9"), "-o", str(tmp_path / "f.png")],
                 ["figures", str(res)]):
        r = cli(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "skipping" in r.stderr and "bad000000000" in r.stderr
    r = cli("sweep", "width=4,8", *tiny, "--results", str(res))
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_a_run_stored_in_two_experiments_is_read_once(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4", *tiny, "--results", str(res)).returncode == 0  # with its figures
    shutil.copytree(res / "fig9_9", res / "copy")
    with pytest.warns(UserWarning, match="more than one folder"):
        df = store.load(res)
    assert df.run_id.nunique() == 1 and not df.duplicated(["run_id", "epoch"]).any()
    import pyarrow.dataset as ds

    figures = list((res / "fig9_9" / "_figures").glob("*.png"))
    assert figures and ds.dataset(res).to_table().num_rows == 2 * len(df)  # both files, and nothing else


# 6. -------------------------------------------------------------- workers die with their sweep

def _process_helpers():
    """The process-tree helpers of scripts/chaos.py (one copy of them), imported from the script."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chaos", Path(__file__).resolve().parents[1] / "scripts" / "chaos.py")
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    return chaos.descendants, chaos.alive


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_kill_minus_nine_of_a_sweep_leaves_no_worker_alive_within_10_s(jobs, tiny, tmp_path):
    descendants, alive = _process_helpers()
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8,16,32,64", *tiny, "seed=0,1", "epochs=100000",
            "--jobs", jobs, "--results", str(tmp_path / "r"), "--no-plot"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, workers = time.time() + 90, set()
    while time.time() < deadline and len(workers) < 2:  # wait until the workers train
        time.sleep(0.5)
        workers = descendants(proc.pid)
        if not store.trainings(tmp_path / "r" / "fig9_9"):
            workers = set()
    assert len(workers) >= 2, "the sweep never started its workers"
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and alive(workers):
        time.sleep(0.2)
    assert not alive(workers)


def test_a_killed_worker_costs_its_runs_only_and_is_reported_in_one_line(tiny, tmp_path):
    args = [sys.executable, "-m", "ddescent", "sweep", "width=4,8,16,32,64,128", *tiny, "seed=0,1", "epochs=400",
            "--results", str(tmp_path / "r"), "--no-plot"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline and len(store.trainings(tmp_path / "r" / "fig9_9")) < 2:
        time.sleep(0.2)
    trainers = {t["pid"] for t in store.trainings(tmp_path / "r" / "fig9_9")}
    os.kill(min(trainers), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err and "BrokenProcessPool" not in err
    failed = [line for line in err.splitlines() if "FAILED: its worker died (killed by SIGKILL)" in line]
    assert failed and err.strip().splitlines()[-1].startswith("ddescent: error:")
    done = store.load(tmp_path / "r").run_id.nunique()
    assert done == 12 - len(failed) and done > 0  # the rest of the sweep finished


# 7. -------------------------------------------------------------- names and paths

@pytest.mark.parametrize("results", ["a,b", "${oc.env:HOME}", "päth ü", "it's"])
def test_any_results_path_is_taken_literally(results, tiny, tmp_path):
    root = tmp_path / results
    r = cli("sweep", "width=4", *tiny, "--results", str(root), "--no-plot")
    assert r.returncode == 0, r.stderr
    assert store.load(root / "fig9_9").run_id.nunique() == 1


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "..", "_hidden", "a/b"])
def test_a_name_is_a_plain_name(name, tiny, tmp_path):
    r = cli("sweep", "width=4", *tiny, f"name={name}", "--results", str(tmp_path / "r"))
    assert r.returncode == 2 and "name" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path.parent / "x").exists()


def test_results_pointing_at_a_file_is_one_line(tiny, tmp_path):
    (tmp_path / "file").write_text("x")
    r = cli("sweep", "width=4", *tiny, "--results", str(tmp_path / "file" / "r"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "is a file" in r.stderr


# 8, 9. ----------------------------------------------------------- inputs that must fail before any work

def _one_line_exit_2(r, key, results):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and key in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not results.exists()


@pytest.mark.parametrize("damage", ["truncated", "bad crc"])
def test_a_damaged_gzip_is_one_line_before_any_work(damage, tmp_path, data_cache):
    write_mnist(tmp_path / "d" / "mnist", n_train=30)
    path = tmp_path / "d" / "mnist" / "train-images-idx3-ubyte.gz"
    blob = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    else:
        raw = bytearray(blob)
        raw[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
        path.write_bytes(bytes(raw))
        with pytest.raises(gzip.BadGzipFile):
            gzip.decompress(bytes(raw))
    r = cli("sweep", *MNIST, f"data.root={tmp_path / 'd'}", "--results", str(tmp_path / "r"))
    _one_line_exit_2(r, "train-images-idx3-ubyte", tmp_path / "r")


@pytest.mark.parametrize("damage", ["empty train", "binary", "empty test"])
def test_bad_parallel_text_is_one_line_before_any_work(damage, tmp_path, data_cache):
    write_parallel_text(tmp_path / "t", n_train=30, n_test=5)
    if damage == "empty train":
        (tmp_path / "t" / "train.de").write_text("")
        (tmp_path / "t" / "train.en").write_text("")
    elif damage == "binary":
        (tmp_path / "t" / "train.de").write_bytes(bytes(range(256)) * 4)
    else:
        (tmp_path / "t" / "test.de").write_text("\n\n")
        (tmp_path / "t" / "test.en").write_text("\n\n")
    r = cli("sweep", "experiment=fig9_11_transformer", "data=parallel_text", f"data.root={tmp_path / 't'}",
            "width=8", "n_train=10", "epochs=1", "name=t", "--results", str(tmp_path / "r"))
    _one_line_exit_2(r, "data.root", tmp_path / "r")


@pytest.mark.parametrize("bad, key", [
    (["optim.lr=inf"], "optim.lr"), (["reg_strength=inf"], "reg_strength"), (["optim.weight_decay=inf"],
                                                                              "optim.weight_decay"),
    (["optim.lr=nan"], "optim.lr"), (["seed=99999999999999999999"], "seed"), (["width=200000"], "width"),
    (["train.patience=3"], "train.patience"), (["experiment=glob(fig9_9_r*)", "width=abc"], "width"),
])
def test_values_that_are_refused_before_any_work(bad, key, tiny, tmp_path):
    r = cli("sweep", *tiny, *bad, "--results", str(tmp_path / "r"))
    _one_line_exit_2(r, key, tmp_path / "r")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_one_line_before_any_work(tiny, tmp_path):
    r = cli("sweep", *tiny, "width=4", "train.device=cuda", "--results", str(tmp_path / "r"))
    _one_line_exit_2(r, "train.device=cuda", tmp_path / "r")
    assert "use train.device=auto or cpu" in r.stderr


def test_a_width_too_big_for_memory_names_the_estimate_and_the_way_round_it(tiny, tmp_path):
    r = cli("sweep", *tiny, "width=200000", "--results", str(tmp_path / "r"))
    assert "GB" in r.stderr and "--no-memory-check" in r.stderr


def test_glob_sweeps_over_presets_work(tiny, tmp_path):
    r = cli("sweep", "experiment=glob(fig9_9_r*)", *tiny, "width=4", "--results", str(tmp_path / "r"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "random_features" in r.stdout


def test_a_full_disk_is_one_line(tiny, tmp_path, monkeypatch):
    """What the user sees when the disk fills while a checkpoint or a result is written."""
    from ddescent import cli as ddescent_cli

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "r" / "x.tmp"))

    monkeypatch.setattr(store, "write_atomic", full)
    monkeypatch.setattr("ddescent.store.runs.write_atomic", full)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = CliRunner().invoke(ddescent_cli.app, ["run", "width=4", *tiny, "--results", str(tmp_path / "r")])
    assert r.exit_code == 2 and "No space left on device" in r.output and "Traceback" not in r.output


# 10. ------------------------------------------------------------- paths and files that once ended in a traceback

def test_a_data_root_in_a_symlink_loop_is_one_line_before_any_work(tmp_path, data_cache):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    env = {"DDESCENT_DATA": str(tmp_path / "loop1")}
    r = cli("sweep", *MNIST, "--results", str(tmp_path / "r"), env=env)
    _one_line_exit_2(r, "$DDESCENT_DATA", tmp_path / "r")
    r = cli("data", "ls", env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Symlink loop" in r.stderr, r.stderr
    r = cli("data", "ls", "--root", str(tmp_path / "loop2"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--root" in r.stderr, r.stderr


def test_a_folder_nested_too_deep_to_walk_is_one_line(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot").returncode == 0
    here = os.getcwd()
    try:
        os.chdir(res)  # (relative steps: the absolute path of the deepest folder is longer than a path may be)
        for _ in range(1100):
            os.mkdir("d")
            os.chdir("d")
        os.chdir(here)
        for args in (["ls", str(res)], ["figures", str(res)], ["ls", str(res), "--stale"]):
            r = cli(*args)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2 and len(lines) == 1 and "too deep" in lines[0], (args, r.stderr)
        assert not (res / "fig9_9" / "_figures").exists()
    finally:  # removed step by step: shutil.rmtree (pytest's cleanup of old temporary folders) would recurse too
        os.chdir(res)
        depth = 0
        while os.path.isdir("d"):
            os.chdir("d")
            depth += 1
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(here)


def test_runs_whose_files_hold_only_the_required_columns_are_skipped_in_one_line(tiny, tmp_path):
    import pyarrow.parquet as pq

    res = tmp_path / "r"
    assert cli("sweep", "width=4,8", *tiny, "--results", str(res), "--no-plot").returncode == 0
    runs = res / "fig9_9" / "runs"
    victim = sorted(runs.glob("*.parquet"))[0]
    pq.write_table(pq.read_table(victim).select(list(store.REQUIRED)), victim)
    for args in (["ls", str(res)], ["ls", str(res), "--format", "csv"],
                 ["plot", str(res / "fig9_9"), "--figure", "9.10", "-o", str(tmp_path / "f.png")],
                 ["figures", str(res)]):
        r = cli(*args)
        warned = [line for line in r.stderr.splitlines() if victim.stem in line]
        assert r.returncode == 0 and "Traceback" not in r.stderr and len(warned) == 1, (args, r.stderr)
        assert "skipping 1 run(s) whose files lack" in warned[0] and "n_params" in warned[0]
    assert victim.stem not in cli("ls", str(res), "--format", "csv").stdout
    for other in sorted(runs.glob("*.parquet"))[1:]:  # with every file so: nothing to show, said in one line
        pq.write_table(pq.read_table(other).select(list(store.REQUIRED)), other)
    r = cli("plot", str(res / "fig9_9"), "-o", str(tmp_path / "g.png"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == f"ddescent: error: {res / 'fig9_9'}: no runs found"
    assert len(r.stderr.strip().splitlines()) == 2 and not (tmp_path / "g.png").exists()  # the warning, the error


def test_a_sweep_dir_through_a_file_is_one_line_before_any_work(tiny, tmp_path):
    (tmp_path / "file").write_text("x")
    for where in ("file", "file/sub"):
        r = cli("sweep", "width=4,8", *tiny, "--jobs", "2", f"hydra.sweep.dir={tmp_path / where}",
                "--results", str(tmp_path / "r"))
        _one_line_exit_2(r, f"hydra.sweep.dir={tmp_path / where}", tmp_path / "r")
        assert "is a file" in r.stderr


def test_a_relative_data_root_is_read_from_where_the_command_was_given(tmp_path, data_cache):
    """hydra.job.chdir=true runs each job in its own output folder: the relative data.root the user typed names the
    folder under the directory the command was given in, not one under the job's."""
    write_mnist(tmp_path / "mine" / "mnist", n_train=30, seed=1)
    r = cli("sweep", *MNIST, "width=4,8", "data.root=mine", "hydra.job.chdir=true", "--jobs", "2", "--no-plot",
            "--results", str(tmp_path / "r"), cwd=tmp_path, process=True)
    assert r.returncode == 0, r.stderr
    df = store.load(tmp_path / "r" / "m")
    assert df.run_id.nunique() == 2
    assert {json.loads(c)["data"]["root"] for c in df.config} == {str(tmp_path / "mine")}
