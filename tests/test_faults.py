"""Faults without loss (issue 25): a damaged run file is never "done", a dataset edited in place is new data, every
wait has a deadline (a FIFO checkpoint, a stalled download, a silent tracker), the memory guard sees the limits
the process really has, and out-of-range settings are one line before any work."""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


# 6. -------------------------------------------------------------- folder format versions: old and new on one folder

def _pending_ids(*args):
    r = cli("sweep", *args, "--dry-run")
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if "pending" in line][:-1]


@pytest.fixture
def python_process():
    """A live Python process (what an older ddescent training a run is), ended after the test."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(0.05)
    yield proc
    proc.kill()
    proc.wait()


def test_a_lock_of_an_older_ddescent_holds_its_run_and_the_sweep_says_which_version(tiny, tmp_path, python_process):
    res = tmp_path / "r"
    args = ["width=4,8", *tiny, "--results", str(res), "--no-plot"]
    held, free = _pending_ids(*args)
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    # ddescent 0.1 (f802be6) named its lock .<run_id>.<host>.<pid>.lock, after its process had started
    old_lock = runs / f".{held}.{store.HOST}.{python_process.pid}.lock"
    old_lock.touch()
    dead = runs / f".{free}.{store.HOST}.{_dead_pid()}.lock"  # an older version's lock whose process has ended
    dead.touch()

    r = cli("sweep", *args)
    assert r.returncode == 3, r.stderr  # some runs are being trained by another live process
    assert not store.is_done(res / "fig9_9", held) and store.is_done(res / "fig9_9", free)
    (line,) = warnings_naming(r.stderr, "run(s) not trained here")
    assert "an older ddescent (0.1, pid-only locks)" in line and f"process {python_process.pid}" in line, line
    assert old_lock.exists() and not dead.exists()

    python_process.kill()
    python_process.wait()
    r = cli("sweep", *args)
    assert r.returncode == 0 and "1 already done, 1 to run" in r.stderr, r.stderr
    assert store.is_done(res / "fig9_9", held) and not old_lock.exists()


def _dead_pid():
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_an_older_versions_lock_named_by_a_reused_pid_or_a_process_that_is_no_python_holds_nothing(tmp_path):
    from ddescent.store import locks

    me = os.getpid()
    assert locks.legacy_alive(me, time.time())  # this Python process, started before the lock
    assert not locks.legacy_alive(me, time.time() - 3600)  # the lock is older than the process: a reused pid
    assert not locks.legacy_alive(_dead_pid(), time.time())
    if "python" not in open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode():
        assert not locks.legacy_alive(1, time.time())  # pid 1 is running, but it is not a ddescent


# The checks of ddescent 0.1 (f802be6, ddescent/store.py), verbatim but for the names: does it honour our locks?
def _v01_writer_alive(name: str, mtime: float, host: str) -> bool:
    STALE_AFTER_S = 24 * 3600
    parts = name.split(".")
    if len(parts) >= 5 and parts[2] == host and parts[3].isdigit():
        try:
            os.kill(int(parts[3]), 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return time.time() - mtime < STALE_AFTER_S


def test_the_locks_this_version_writes_are_honoured_by_older_versions(tmp_path):
    from ddescent.store import locks

    folder = tmp_path / "runs"
    with store.claim(folder, "abc123") as claim:
        assert claim.ours
        (lock,) = folder.glob(".abc123.*.lock")
        assert _v01_writer_alive(lock.name, lock.stat().st_mtime, store.HOST)  # 0.1 keeps it
        writer = locks.Writer.of(lock.name)  # 0.1 from 809b611 on, 0.2, 0.3: pid and start time
        assert writer is not None and not writer.legacy and writer.alive(lock.stat().st_mtime, store.LOCK_STALE_S)
    assert not lock.exists()


def test_a_folder_of_a_newer_format_is_refused_in_one_line_before_any_work(tiny, tmp_path):
    import importlib.metadata

    from ddescent.store import folder_format
    from ddescent.version import __version__

    res = tmp_path / "r"
    r = cli("sweep", "width=4", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 0, r.stderr
    folder = res / "fig9_9"
    marker = json.loads((folder / folder_format.MARKER).read_text())
    assert marker == {"format": folder_format.FORMAT, "written_by": __version__}
    # the version recorded in every run file is the real one
    assert set(store.load(folder).ddescent_version) == {__version__} == {importlib.metadata.version("ddescent")}

    (folder / folder_format.MARKER).write_text(json.dumps({"format": folder_format.FORMAT + 1,
                                                           "written_by": "9.0.0"}))
    before = sorted(p.name for p in folder.rglob("*"))
    r = cli("sweep", "width=8", *tiny, "--results", str(res), "--no-plot")
    assert r.returncode == 2, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("ddescent: error")]
    assert f"folder format {folder_format.FORMAT + 1} (written by ddescent 9.0.0)" in line and "upgrade" in line
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing trained, cleaned or marked


# 7. -------------------------------------------------------------- workers never outlive their sweep; one dead worker

JOBS2 = ["width=2,4", "data.num_samples=1000", "n_train=200", "train.eval_points=3", "progress=off", "seed=0",
         "--no-plot", "--jobs", "2"]


def _session(sid):
    """The live processes of session `sid` (a sweep started in a session of its own, and all it started): pid ->
    command line. Processes reparented when the sweep died stay in its session."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] not in "ZX":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
        except (OSError, IndexError):
            pass
    return out


def _sweep_process(out, *args):
    """`ddescent sweep ARGS` in a session of its own, its output to the file `out` (a pipe would keep a test
    waiting for whatever process of the sweep outlives it)."""
    import subprocess
    import sys

    with open(out, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "ddescent", "sweep", *args], stdout=f, stderr=f,
                                start_new_session=True)


def _ended(proc, out, seconds):
    """The sweep's exit code and output, once it has ended (killed after `seconds`)."""
    import subprocess

    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode, Path(out).read_text()


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    pytest.fail(f"no {what} within {seconds} s")


def _gone_within(sid, seconds):
    """Whether session `sid` has no live process within `seconds`; what is left is killed (and named) if not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _session(sid):
        time.sleep(0.2)
    left = _session(sid)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def _training_pids(folder):
    return {t["pid"] for t in store.trainings(folder)} if (folder / "_logs").exists() else set()


@pytest.mark.parametrize("moment", ["resource tracker", "worker", "training"])
def test_a_sweep_killed_by_sigkill_takes_its_joblib_workers_down_at_every_moment_of_their_start(tmp_path, data_cache,
                                                                                                moment):
    res = tmp_path / "r"
    proc = _sweep_process(tmp_path / "out", *JOBS2, "epochs=400", "--results", str(res))
    try:
        if moment == "training":
            _wait_for(lambda: len(_training_pids(res / "fig9_9")) == 2, 90, "training")
        else:  # the instant the first such process exists: before it has run any code of ours
            needle = {"resource tracker": "resource_tracker", "worker": "popen_loky_posix"}[moment]
            _wait_for(lambda: any(needle in c for c in _session(proc.pid).values()), 90, moment)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not _gone_within(proc.pid, 15), "processes of the sweep alive 15 s after it was killed"


def test_one_dead_joblib_worker_costs_only_a_retry_every_run_is_stored_and_counted_once(tmp_path, data_cache):
    res = tmp_path / "r"
    proc = _sweep_process(tmp_path / "out", *JOBS2, "epochs=100", "train.checkpoint_every=10", "--results", str(res))
    try:
        _wait_for(lambda: len(_training_pids(res / "fig9_9")) == 2, 90, "two workers training")
        os.kill(max(_training_pids(res / "fig9_9")), signal.SIGKILL)  # one loky worker
    finally:
        code, err = _ended(proc, tmp_path / "out", 300)
    assert code == 0, err
    assert "launching them once more" in err  # the lost packs (loky ends the other worker too) are tried again
    runs = [line for line in err.splitlines() if "/2, " in line]
    assert len(runs) == 2 and all("complete" in line for line in runs), err  # each run once: [1/2], [2/2]
    assert len(store.load(res / "fig9_9").run_id.unique()) == 2
    assert not _gone_within(proc.pid, 10)



@pytest.mark.parametrize("retried,level", [(True, "WARNING"), (False, "ERROR")])
def test_a_launcher_that_stops_waiting_is_an_error_only_when_nothing_retries(retried, level, tiny, tmp_path,
                                                                             monkeypatch, caplog):
    """joblib's lost jobs are launched once more: the first stop is a warning (-q shows errors only), the last one
    an error."""
    import types

    from ddescent import launch
    from ddescent.planner import plan as make_plan

    jobs = make_plan(["width=4", *tiny], str(tmp_path))

    def multirun(**kwargs):
        raise RuntimeError("a worker died")

    monkeypatch.setattr(launch, "hydra_app", lambda: types.SimpleNamespace(hydra=types.SimpleNamespace(multirun=multirun)))
    with caplog.at_level("INFO", logger="ddescent"):
        assert launch.run_hydra([jobs], ["hydra/launcher=joblib"], 2, retried=retried) == [None]
    said = [r for r in caplog.records if "stopped waiting" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == level


# 8. -------------------------------------------------------------- honest counts under a full disk; signals, one line

def test_a_run_reported_stored_is_never_reported_again_and_the_eta_never_goes_below_zero():
    import logging

    from ddescent.progress import Reporter
    from ddescent.runner import Outcome

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("ddescent")
    saved = logger.level, logger.handlers[:], logger.propagate
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        reporter = Reporter({"a": "run a", "b": "run b"}, {"a": 1.0, "b": 1.0})
        reporter("run", {"outcome": Outcome("a", "run a", "complete", final={"train_error": 0, "test_error": 0})})
        reporter("run", {"outcome": Outcome("a", "run a", "failed", note="No space left on device")})  # its pack
        reporter("run", {"outcome": Outcome("b", "run b", "failed", note="No space left on device")})
        reporter.close()
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:], logger.propagate = saved[1], saved[2]
    assert len(lines) == 2 and lines[0].startswith("[1/2") and lines[1].startswith("[2/2"), lines
    assert "FAILED" not in lines[0] and "run b: FAILED" in lines[1] and "ETA -" not in "".join(lines)


@pytest.fixture
def full_runs_folder(tmp_path):
    """<tmp>/r/fig9_9/runs on a tmpfs that holds two run files and a half (root only: mounting needs it)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    runs = tmp_path / "r" / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    size = 120 * 1024  # run files of this recipe are ~48 KB
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(runs)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield runs
    subprocess.run(["umount", "-l", str(runs)])


def test_under_a_full_disk_stored_runs_are_never_failed_and_every_count_counts_each_run_once(tiny, full_runs_folder):
    import re

    res = full_runs_folder.parent.parent
    r = cli("sweep", *tiny, "width=2,4", "seed=0,1,2", "--results", str(res), "--no-plot")
    stored = {p.stem for p in full_runs_folder.glob("*.parquet")}
    assert r.returncode == 1 and 0 < len(stored) < 6, r.stderr
    counters = [tuple(map(int, m)) for m in re.findall(r"\[(\d+)/(\d+),", r.stderr)]
    assert counters == [(i, 6) for i in range(1, 7)], r.stderr  # one line per run, never [7/6]
    assert "ETA -" not in r.stderr
    failed = [line for line in r.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 6 - len(stored), r.stderr  # the stored ones are not among them
    assert f"ddescent: error: {6 - len(stored)} run(s) failed" in r.stderr


@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "ddescent: error: stopped by SIGTERM; "),
                                           (signal.SIGINT, 130, "ddescent: error: interrupted; ")],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_a_sweep_with_jobs_is_one_line_a_nonzero_exit_and_no_leaked_semaphore(tmp_path, data_cache, sig,
                                                                                         code, line):
    res = tmp_path / "r"
    proc = _sweep_process(tmp_path / "out", *JOBS2, "epochs=400", "--results", str(res))
    try:
        _wait_for(lambda: len(_training_pids(res / "fig9_9")) == 2, 90, "training")
        os.kill(proc.pid, sig)
    finally:
        returned, err = _ended(proc, tmp_path / "out", 60)
    assert returned == code, err
    assert [x for x in err.splitlines() if "error" in x or "Traceback" in x or "Warning" in x][0].startswith(line)
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    assert not _gone_within(proc.pid, 10)


# ------------------------------------------------------------------ a write that fails at each step of the finish

@pytest.mark.parametrize("step", ["final state", "first run file", "second run file"])
def test_a_write_failing_at_any_step_of_the_finish_loses_no_training(step, tmp_path, data_cache, monkeypatch):
    """The finish of a pack: its final state (train.keep_final), then each run's file, then the checkpoint goes.
    A full disk at any of these steps: the runs whose files were not written are failed with the path and what is
    kept; the rerun writes them without training again (from the final state) or from the last checkpoint, and
    every number equals an undisturbed sweep's."""
    import errno

    import ddescent
    from ddescent import runner
    from ddescent.store import runs as store_runs

    overrides = [*TINY, "width=4,8", "epochs=6", "train.eval_points=6", "train.checkpoint_every=2"]
    runner.execute(plan(overrides, tmp_path / "undisturbed"))
    specs = plan(overrides, tmp_path / "r")

    real, written = store_runs._write_atomic, []

    def full_disk(path, write, **kwargs):
        path = Path(path)
        if path.parent.name == "runs":
            written.append(path)
        fails = {"final state": path.parent.name == "_final" and path.suffix == ".pt",
                 "first run file": path.parent.name == "runs" and len(written) == 1,
                 "second run file": path.parent.name == "runs" and len(written) == 2}[step]
        if fails:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write, **kwargs)

    monkeypatch.setattr(store_runs, "_write_atomic", full_disk)
    first = runner.execute(specs)
    monkeypatch.setattr(store_runs, "_write_atomic", real)
    failed = [o for o in first if o.status == "failed"]
    if step == "final state":
        assert not failed  # the final state is a shortcut for later: the runs' files are written all the same
    else:
        assert len(failed) == 1 and "No space left on device" in failed[0].note and "runs/" in failed[0].note
        assert "final state is kept in" in failed[0].note
        assert len(list((tmp_path / "r" / specs[0].name / "_checkpoints").glob("*.pt"))) == 1  # not released

    time.sleep(1.1)  # (timestamps are to the second: the rerun's own start would differ)
    started = []
    again = runner.execute(specs, lambda kind, p: started.append(p["epoch"]) if kind == "epoch" else None)
    assert {o.status for o in again} <= {"done", "complete"}
    if step != "final state":
        assert started and min(started) == 6  # nothing trained again: the files came from the final state
    a, b = ddescent.load(tmp_path / "r"), ddescent.load(tmp_path / "undisturbed")
    assert a["run_id"].nunique() == 2
    assert a["started_at"].nunique() == 1  # the run written on the rerun keeps its pack's start
    m = a.merge(b, on=["run_id", "epoch"], suffixes=("", "_u"))
    assert len(m) == len(a) == len(b)
    for c in ("train_error", "test_error", "train_loss", "test_loss"):
        assert (m[c] == m[f"{c}_u"]).all(), c
