"""Faults without loss (issue 25): a damaged run file is never "done", a dataset edited in place is new data, every
wait has a deadline (a FIFO checkpoint, a stalled download, a silent tracker), the memory guard sees the limits
the process really has, and out-of-range settings are one line before any work."""

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import TINY, cli, plan
from ddescent import ConfigError, checkpoint, machine, store
from ddescent.data import fetch as fx
from fake_data import write_mnist


def finishes(seconds, fn, release=lambda: None):
    """fn() run with a deadline: its result, or a failure (after `release()`, which unblocks what it waits on)
    when it hangs, so a regression fails this test instead of hanging the suite."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release()
        pytest.fail(f"still waiting after {seconds} s")
    return out["value"]


def warnings_naming(stderr, text):
    return [line for line in stderr.splitlines() if text in line]


# 1. -------------------------------------------------------------- done means readable

SWEEP = ["width=2,4,8", *TINY]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_cache):
    """One tiny sweep of three runs, done once; each test damages a copy."""
    res = tmp_path_factory.mktemp("swept") / "r"
    r = cli("sweep", *SWEEP, "--results", str(res), "--no-plot")
    assert r.returncode == 0, r.stderr
    return res


def _drop_test_error(t):
    return t.drop(["test_error"])


def _one_row_twice(t):  # the last row replaced by a copy of the one before: as many rows as a whole file
    return pa.concat_tables([t.slice(0, t.num_rows - 1), t.slice(t.num_rows - 2, 1)])


def _copies(t):  # a file of the right run id made of many copies of its rows
    return pa.concat_tables([t] * 50)


def _first_row_only(t):
    return t.slice(0, 1)


@pytest.mark.parametrize("damage,why", [(_drop_test_error, "no test_error column"),
                                        (_one_row_twice, "duplicated rows"),
                                        (_copies, "200 rows, duplicated or foreign"),
                                        (_first_row_only, "rows at epochs [0]")])
def test_a_run_file_readers_would_refuse_is_set_aside_and_only_that_run_trained_again(swept, tmp_path, damage, why):
    res = tmp_path / "r"
    shutil.copytree(swept, res)
    runs = res / "fig9_9" / "runs"
    victim = sorted(runs.glob("*.parquet"))[1]
    pq.write_table(damage(pq.read_table(victim)), victim)
    untouched = {p: p.stat().st_mtime_ns for p in runs.glob("*.parquet") if p != victim}
    trained_before = len(store.trainings(res / "fig9_9"))

    r = cli("sweep", *SWEEP, "--results", str(res), "--no-plot")
    assert r.returncode == 0, r.stderr
    assert "2 already done, 1 to run" in r.stderr, r.stderr
    assert [t["run_id"] for t in store.trainings(res / "fig9_9")[trained_before:]] == [victim.stem]
    (line,) = warnings_naming(r.stderr, victim.name)  # one line: which file, why, and where it went
    assert why in line and "_damaged" in line
    assert (res / "fig9_9" / "_damaged" / f"{victim.name}.damaged").is_file()
    assert store.check_run(victim) is None and len(store.load(victim)) == 4
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # the intact runs were not written again


@pytest.mark.parametrize("overrides", [
    pytest.param(["model.solver=lstsq"], id="closed-form, one row"),
    pytest.param(["model.solver=gd", "train.steps=50"], id="closed-form path"),
    pytest.param(["model.solver=gd", "optim.lr=1000", "train.steps=200"], id="closed-form, diverged"),
])
def test_every_kind_of_finished_closed_form_run_counts_as_done(tmp_path, data_cache, overrides):
    args = ["sweep", "data=teacher_student", "model=linear", "name=lin", "width=10,20", "label_noise=0", "n_train=15",
            "data.dim=30", "train.eval_points=4", "progress=off", "seed=0", *overrides, "--results", str(tmp_path),
            "--no-plot"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    frame = store.load(tmp_path / "lin")
    assert set(frame.status) == {"diverged" if "optim.lr=1000" in overrides else "complete"}
    r = cli(*args)
    assert r.returncode == 0 and "2 already done, 0 to run" in r.stderr, r.stderr


@pytest.mark.parametrize("overrides", [
    pytest.param(["optim.lr=1e6", "epochs=3"], id="diverged"),
    pytest.param(["val_fraction=0.2", "train.patience=1", "epochs=30", "optim.lr=1e-9"], id="early-stopped"),
    pytest.param(["train.steps=5", "train.batch_size=50"], id="step budget"),
])
def test_every_kind_of_finished_trained_run_counts_as_done(tmp_path, data_cache, overrides):
    args = ["sweep", "width=4", *TINY, *overrides, "--results", str(tmp_path), "--no-plot"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    (path,) = (tmp_path / "fig9_9" / "runs").glob("*.parquet")
    frame = store.load(path)
    if "diverged" in str(overrides):
        assert frame.status.iloc[0] == "diverged" and frame.epoch.max() < 3
    if "train.patience=1" in overrides:
        assert frame.epoch.max() < 30  # it did stop early
    r = cli(*args)
    assert r.returncode == 0 and "1 already done, 0 to run" in r.stderr, r.stderr


# 2. -------------------------------------------------------------- a dataset edited in place is other data

def test_a_dataset_file_edited_in_place_with_its_stamp_restored_gets_a_new_run_id(tmp_path, data_cache):
    write_mnist(tmp_path / "data" / "mnist", n_train=30, gz=False, seed=3)
    overrides = ["data=mnist", "model=mlp", "width=4", "epochs=1", "n_train=20", "train.eval_points=1",
                 "train.batch_size=10", "seed=0", f"data.root={tmp_path / 'data'}"]
    (before,) = plan(overrides, tmp_path / "r")
    labels = tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte"
    st = labels.stat()
    with open(labels, "r+b") as f:  # one label byte, in place: same inode, same size
        f.seek(8)
        value = f.read(1)[0]
        f.seek(8)
        f.write(bytes([(value + 1) % 10]))
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = labels.stat()
    assert (again.st_ino, again.st_size, again.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    (after,) = plan(overrides, tmp_path / "r")
    assert after.fingerprint != before.fingerprint and after.run_id != before.run_id


# 3. -------------------------------------------------------------- a deadline on every wait

def test_a_fifo_at_the_checkpoint_path_is_set_aside_and_the_run_starts_over(tmp_path, data_cache):
    res = tmp_path / "r"
    args = ["sweep", "width=4", *TINY, "--results", str(res), "--no-plot"]
    (spec,) = plan(args[1:-3], res)
    folder = store.checkpoints_dir(spec.folder)
    folder.mkdir(parents=True)
    key = checkpoint.key([spec.run_id])
    (folder / f"{key}.json").write_text(json.dumps({"runs": [spec.run_id]}))
    os.mkfifo(folder / f"{key}.pt")

    def release():  # a writer at the other end ends a reader blocked on the FIFO
        fd = os.open(folder / f"{key}.pt", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    r = finishes(60, lambda: cli(*args), release)
    assert r.returncode == 0, r.stderr
    assert store.is_done(spec.folder, spec.run_id)
    (line,) = warnings_naming(r.stderr, "not a regular file")
    assert f"{key}.pt" in line
    assert (spec.folder / "_damaged" / f"{key}.pt.damaged").exists()


class _Dripping:
    """An HTTP server that promises `size` bytes, sends one, then either nothing (`every` None) or one byte every
    `every` seconds, for at most `limit` seconds."""

    def __init__(self, size, every, limit=10.0):
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                start = time.monotonic()
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    while not outer.stop.wait(every or 0.05) and time.monotonic() - start < limit:
                        if every:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("every", [None, 0.2], ids=["one byte then silence", "one byte every 0.2 s"])
def test_a_stalled_download_is_one_line_within_the_stall_timeout_and_leaves_no_part_file(tmp_path, monkeypatch,
                                                                                       every):
    server = _Dripping(4096, every)
    try:
        f = dataclasses.replace(fx.SOURCES["mnist"].files[3], urls=(server.url + "t10k-labels-idx1-ubyte.gz",),
                                digest=f"sha256:{hashlib.sha256(b'x' * 4096).hexdigest()}", size=4096)
        spec = dataclasses.replace(fx.SOURCES["mnist"], files=(f,))
        monkeypatch.setenv("DDESCENT_FETCH_TIMEOUT", "1")
        start = time.monotonic()
        with pytest.raises(ConfigError) as err:
            fx.fetch("mnist", tmp_path, sources=spec)
        took = time.monotonic() - start
    finally:
        server.close()
    message = str(err.value)
    assert "\n" not in message and "stalled" in message and "DDESCENT_FETCH_TIMEOUT=1 s" in message, message
    assert took < 5
    assert not [p for p in tmp_path.rglob("*") if p.name != fx.CACHE_NAME]  # no .part file, no empty folder


def test_a_bad_fetch_timeout_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DDESCENT_FETCH_TIMEOUT", "soon")
    f = dataclasses.replace(fx.SOURCES["mnist"].files[3], urls=("http://127.0.0.1:1/x",))
    with pytest.raises(ConfigError, match=r"^DDESCENT_FETCH_TIMEOUT=soon: expected a number of seconds > 0$"):
        fx.fetch("mnist", tmp_path, sources=dataclasses.replace(fx.SOURCES["mnist"], files=(f,)))


@pytest.fixture
def silent_server():
    """A server that accepts every connection and never answers (nor closes)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, done = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    done.set()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def mlflow_deadline(monkeypatch):
    """logger=mlflow with a 1 s deadline and no retries, MLflow's variables unset, and no backend warned yet."""
    pytest.importorskip("mlflow")
    from ddescent.loggers import base
    from ddescent.loggers import mlflow as ml

    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ml, "MLFLOW_TIMEOUT_S", 1, raising=False)
    monkeypatch.setattr(ml, "MLFLOW_RETRIES", 0, raising=False)
    monkeypatch.setattr(ml, "_silent", {}, raising=False)
    monkeypatch.setattr(base, "_warned", set())
    return ml


def test_a_silent_mlflow_server_costs_one_deadline_and_every_run_is_stored(tmp_path, data_cache, silent_server,
                                                                           mlflow_deadline):
    res = tmp_path / "r"
    args = ["sweep", "width=4,8", *TINY, "logger=mlflow", f"logger.tracking_uri={silent_server}",
            "--results", str(res), "--no-plot"]
    start = time.monotonic()
    # One usable core: the packs train one after the other in this process, where the deadline is patched.
    r = finishes(90, lambda: cli(*args, env={"SLURM_CPUS_PER_TASK": "1"}))
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - start < 20  # one 1 s deadline for the two runs (the sweep itself takes seconds)
    (line,) = warnings_naming(r.stderr, "logger=mlflow")
    assert "did not answer within 1 s" in line and "the run goes on without it" in line
    assert len(store.load(res / "fig9_9").run_id.unique()) == 2


def test_mlflow_deadlines_are_set_only_where_the_user_set_none(monkeypatch, mlflow_deadline):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    mlflow_deadline._deadlines()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"  # the user's
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # ours (MLFLOW_RETRIES, set to 0 above)


# 4. -------------------------------------------------------------- the memory the process really has

GIB = 1 << 30


def _fake_proc(tmp_path, cgroup_line, vm_size_kb=1024):
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       {128 * GIB // 1024} kB\nMemAvailable:   {64 * GIB // 1024} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    (proc / "self" / "status").write_text(f"Name:\tpython\nVmSize:\t{vm_size_kb} kB\n")
    return proc


@pytest.fixture
def no_rlimit(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_the_memory_guard_reads_a_cgroup_v2_limit(tmp_path, no_rlimit):
    proc = _fake_proc(tmp_path, "0::/job/step")
    cgroup = tmp_path / "cgroup"
    (cgroup / "job" / "step").mkdir(parents=True)
    (cgroup / "memory.max").write_text("max\n")  # the root: no limit
    (cgroup / "job" / "memory.max").write_text(f"{GIB}\n")  # the job's limit, an ancestor's, binds
    (cgroup / "job" / "memory.current").write_text(f"{GIB // 4}\n")
    (cgroup / "job" / "memory.stat").write_text(f"anon 1\ninactive_file {GIB // 8}\n")
    (cgroup / "job" / "step" / "memory.max").write_text("max\n")
    (cgroup / "job" / "step" / "memory.current").write_text(f"{GIB // 4}\n")
    assert machine.available_memory_bytes(proc, cgroup) == GIB - GIB // 4 + GIB // 8


def test_the_memory_guard_reads_a_cgroup_v1_limit(tmp_path, no_rlimit):
    proc = _fake_proc(tmp_path, "4:memory:/job")
    cgroup = tmp_path / "cgroup"
    (cgroup / "memory" / "job").mkdir(parents=True)
    (cgroup / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # the root: no limit
    (cgroup / "memory" / "memory.usage_in_bytes").write_text(f"{8 * GIB}\n")
    (cgroup / "memory" / "job" / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    (cgroup / "memory" / "job" / "memory.usage_in_bytes").write_text(f"{GIB // 2}\n")
    assert machine.available_memory_bytes(proc, cgroup) == 2 * GIB - GIB // 2


def test_the_memory_guard_reads_rlimit_as(tmp_path, monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 * GIB, resource.RLIM_INFINITY))
    proc = _fake_proc(tmp_path, "0::/", vm_size_kb=GIB // 1024)
    assert machine.available_memory_bytes(proc, tmp_path / "no-cgroup") == 2 * GIB


def test_a_sweep_that_does_not_fit_the_cgroup_is_refused_in_one_line(tmp_path, data_cache, monkeypatch, no_rlimit):
    proc = _fake_proc(tmp_path, "0::/")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text(f"{64 << 20}\n")  # 64 MiB
    (cgroup / "memory.current").write_text(f"{32 << 20}\n")
    monkeypatch.setattr(machine, "PROC", proc, raising=False)
    monkeypatch.setattr(machine, "CGROUP", cgroup, raising=False)
    res = tmp_path / "r"
    r = cli("sweep", "width=4000", *TINY, "train.device=cpu", "--results", str(res), "--dry-run")
    assert r.returncode == 2, (r.stdout, r.stderr)
    (line,) = r.stderr.strip().splitlines()
    assert "0.0336 GB available on cpu" in line


# 5. -------------------------------------------------------------- one line instead of a traceback

@pytest.mark.parametrize("overrides,start", [
    (["data=teacher_student", "model=linear", "width=10", "label_noise=0", "n_train=50", "data.noise=1e300"],
     "ddescent: error: data.noise=1e+300: expected a number in [0, 1e6]"),
    (["val_fraction=0.9999", "n_train=null", "data.num_samples=1000"],
     "ddescent: error: val_fraction=0.9999: keeps 250 of the 250 samples"),
])
def test_settings_that_used_to_raise_mid_run_are_one_line_before_any_work(tmp_path, data_cache, overrides, start):
    res = tmp_path / "r"
    r = cli("sweep", *overrides, "epochs=1", "progress=off", "--results", str(res))
    assert r.returncode == 2, (r.stdout, r.stderr)
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(start), line
    assert not res.exists()
