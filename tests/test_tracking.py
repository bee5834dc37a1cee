"""Experiment tracking (ddescent.loggers): every backend's records read back with the backend's own reader
equal the rows logged; a failing backend warns once and never stops the run."""

import csv
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ddescent import component
from ddescent.errors import ConfigError
from ddescent.loggers import base as tracking
from ddescent.loggers.mlflow import _param_text, mlflow_uri
from ddescent.loggers.wandb import wandb_mode

CONFIG = {"width": 8, "seed": 0, "epochs": 3, "n_train": 200,
          "model": {"name": "mlp", "width": 8, "depth": 2},
          "optim": {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999]},
          "data": {"name": "mnist1d", "root": None, "n_train": 200, "cache_dir": None},
          "train": {"device": "auto", "patience": 0, "seed": 0, "checkpoint_every": 50, "keep_checkpoints": False},
          # ddescent's plumbing, which no tracker shows as a parameter
          "name": "exp", "results": "results", "progress": "off", "plot": True, "figures": ["9.9"],
          "logger": {"name": "mlflow", "tracking_uri": None}}
# What a tracker shows of CONFIG: no plumbing, and model.width, data.n_train and train.seed only as their axes.
PARAMS = {"width", "seed", "epochs", "n_train", "model.name", "model.depth", "optim.name", "optim.lr",
          "optim.betas", "data.name", "data.root", "train.device", "train.patience"}
PLUMBING = {"name", "results", "progress", "plot", "figures", "logger.name", "logger.tracking_uri",
            "train.checkpoint_every", "train.keep_checkpoints", "data.cache_dir", "model.width", "data.n_train",
            "train.seed"}


def rows_of(seed: int) -> list[dict]:
    """Evaluation rows as the training loop records them: numbers, a NaN validation column, a list extra."""
    out = []
    for epoch in (0, 1, 2, 3):
        out.append({"epoch": epoch, "step": epoch * 40, "wall_time_s": 0.25 * epoch + seed,
                    "train_error": 0.9 / (epoch + 1) + 0.01 * seed, "train_loss": np.float64(2.3 / (epoch + 1)),
                    "test_error": 0.5 + 0.01 * seed, "test_loss": 1.5 - 0.1 * epoch,
                    "val_error": float("nan"), "val_loss": float("nan"), "sws_pi": [0.5, 0.5]})
    return out


def expected(row: dict) -> dict:
    return {k: float(v) for k, v in row.items() if not isinstance(v, list) and math.isfinite(v)}


def tracked(row: dict) -> dict:
    """A row as MLflow and TensorBoard show it: the records' `step` (optimizer steps) is `gd_step`, beside the
    trackers' own step (the epoch)."""
    return {("gd_step" if k == "step" else k): v for k, v in expected(row).items()}


def run_info(tmp_path, run_id="aaaaaaaaaaaa", label="width=8 seed=0", experiment="exp") -> dict:
    return {"run_id": run_id, "experiment": experiment, "config": CONFIG, "results": str(tmp_path / "results"),
            "label": label}


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test starts with no backend having warned yet."""
    monkeypatch.setattr(tracking, "_warned", set())


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ddescent" and r.levelno == logging.WARNING]


def train_packed(loggers: list, summaries=None, statuses=None) -> None:
    """Two runs trained together: their rows arrive interleaved, one evaluation point at a time."""
    rows = [rows_of(i) for i in range(len(loggers))]
    for k in range(len(rows[0])):
        for logger, run_rows in zip(loggers, rows):
            logger.log(run_rows[k], step=run_rows[k]["epoch"])
    for i, logger in enumerate(loggers):
        logger.close((statuses or ["complete"] * len(loggers))[i], (summaries or [{}] * len(loggers))[i])


# ----------------------------------------------------------------------------- none, helpers, rules


def test_none_is_a_no_op(tmp_path):
    for cfg in (None, {"name": "none"}):
        logger = tracking.open_logger(cfg, run_info(tmp_path))
        logger.log(rows_of(0)[0], 0)
        logger.close("complete", {})
    assert not (tmp_path / "results").exists()


def test_runs_are_named_by_what_a_sweep_varies():
    assert tracking.run_name(CONFIG) == "mlp-w8-n200-s0"
    assert tracking.run_name(dict(CONFIG, width=47.0, n_train=None, seed=3)) == "mlp-w47-s3"
    varied = dict(CONFIG, reg_strength=0.001, data_seed=2, seed=1,
                  regularizer={"name": "l2", "strength": 0.001}, model=dict(CONFIG["model"], solver="ridge"))
    assert tracking.run_name(varied) == "mlp-ridge-w8-n200-l2=0.001-d2-s1"
    params = tracking.params_of(CONFIG)
    assert set(params) == PARAMS and not PLUMBING & set(params)


def test_rows_keep_finite_numbers_only():
    row = {"epoch": np.int64(3), "a": np.float32(0.5), "b": float("nan"), "c": float("inf"), "d": [1, 2],
           "e": None, "f": "text", "g": True, "h": 2}
    assert tracking.numbers_of(row) == {"epoch": 3, "a": 0.5, "h": 2}
    assert type(tracking.numbers_of(row)["epoch"]) is int


def _validate(*overrides):
    from ddescent.config import compose, validate

    return validate(compose(list(overrides)))


def test_rules_name_the_key_in_one_line():
    _validate("logger=wandb")
    with pytest.raises(ConfigError, match=r"^logger.mode='sometimes': expected null, online, offline or disabled$"):
        _validate("logger=wandb", "logger.mode=sometimes")
    with pytest.raises(ConfigError, match=r"^logger.tracking_uri='': expected null or a non-empty string$"):
        _validate("logger=mlflow", "logger.tracking_uri=''")
    with pytest.raises(ConfigError, match="^logger=nosuch: no such logger; choose one of"):
        tracking.open_logger({"name": "nosuch"}, {})


def test_logger_group_composes_and_refuses_unknown_keys():
    from ddescent.config import compose

    assert compose([]).logger.name == "none"
    assert dict(compose(["logger=mlflow"]).logger) == {"name": "mlflow", "tracking_uri": None}
    for name, spec in component.registry("logger").items():
        cfg = compose([f"logger={name}"]).logger
        _validate(f"logger={name}")
        assert set(cfg) <= {"name"} | {k.split(".", 1)[1] for k in spec.rules}
    with pytest.raises(ConfigError, match=r"^logger.nope: unknown key"):
        compose(["logger=mlflow", "logger.nope=1"])
    with pytest.raises(ConfigError, match=r"^logger=nosuch: no such logger; choose one of: .*mlflow"):
        compose(["logger=nosuch"])


# ----------------------------------------------------------------------------- csv


def test_csv_round_trips_and_a_rerun_replaces_it(tmp_path):
    info = run_info(tmp_path)
    loggers = [tracking.open_logger({"name": "csv"}, info),
               tracking.open_logger({"name": "csv"}, run_info(tmp_path, run_id="bbbbbbbbbbbb"))]
    first = loggers[0]
    first.log(rows_of(0)[0], 0)
    path = tmp_path / "results" / "exp" / "_logs" / "csv" / "aaaaaaaaaaaa.csv"
    assert len(path.read_text().splitlines()) == 2  # header and the first row, on disk before the run ends
    late = dict(rows_of(0)[1], best_epoch=1)  # a column that appears after the header was written
    first.log(late, 1)
    for row in rows_of(0)[2:]:
        first.log(row, row["epoch"])
    first.close("diverged", {"best_epoch": 1, "weight_hist_counts": [3, 4]})
    with open(path, newline="") as f:
        got = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    assert got == [expected(rows_of(0)[0]), expected(late)] + [expected(r) for r in rows_of(0)[2:]]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta == {"run_id": "aaaaaaaaaaaa", "status": "diverged", "summary": {"best_epoch": 1}}
    loggers[1].close("complete", {})

    again = tracking.open_logger({"name": "csv"}, info)  # a rerun starts the file over
    assert not path.with_suffix(".json").exists()
    again.log(rows_of(0)[0], 0)
    again.close("complete", {})
    assert len(path.read_text().splitlines()) == 2


def test_trackers_follow_the_runner_events(tmp_path):
    """The runner's side: one logger per run of a pack, rows from the "epoch" events, the rest at close."""
    from types import SimpleNamespace

    def spec(run_id, logger):
        return SimpleNamespace(run_id=run_id, name="exp", label=run_id,
                               config=dict(CONFIG, results=str(tmp_path / "results"), logger=logger))

    trained, solved, failed = "a" * 12, "b" * 12, "c" * 12
    trackers = tracking.Trackers([spec(trained, {"name": "csv"}), spec(solved, {"name": "csv"}),
                                  spec(failed, {"name": "csv"})])
    rows = rows_of(0)
    for row in rows[:2]:  # a packed fit: every run's rows, epoch by epoch
        trackers("epoch", {"epoch": row["epoch"], "rows": {trained: row, failed: row}})
    trackers("epoch", {"epoch": 2, "rows": {}})  # an epoch without evaluation
    history = SimpleNamespace(rows=rows, status="complete", summary={"best_epoch": 1})
    trackers.close(trained, history)  # the last rows came with no event: logged at close, in order
    trackers.close(solved, history)  # a closed-form solve: all its rows at close
    trackers.close_all("failed")
    folder = tmp_path / "results" / "exp" / "_logs" / "csv"
    for rid, n, status in ((trained, 4, "complete"), (solved, 4, "complete"), (failed, 2, "failed")):
        with open(folder / f"{rid}.csv", newline="") as f:
            assert [float(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3][:n]
        assert json.loads((folder / f"{rid}.json").read_text())["status"] == status
    assert isinstance(tracking.Trackers([spec("d" * 12, {"name": "none"})]).loggers["d" * 12], tracking.NullLogger)


# ----------------------------------------------------------------------------- tensorboard


def tb_folder(tmp_path, name: str):
    return tmp_path / "results" / "exp" / "_logs" / "tensorboard" / name


def test_tensorboard_event_reader_returns_the_logged_numbers(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    loggers = [tracking.open_logger({"name": "tensorboard"}, dict(run_info(tmp_path, run_id=r),
                                                                  config=dict(CONFIG, seed=i)))
               for i, r in enumerate(ids)]
    for i, logger in enumerate(loggers):  # the models are built: the runner's "start" event
        logger.describe({"n_params": 1000 + i})
    train_packed(loggers, summaries=[{"best_epoch": 2}, {}])
    folders = sorted(p.name for p in tb_folder(tmp_path, "").iterdir())
    assert folders == ["mlp-w8-n200-s0-aaaaaaaaaaaa", "mlp-w8-n200-s1-bbbbbbbbbbbb"]  # width, n_train, seed; run id
    for i, rid in enumerate(ids):
        acc = EventAccumulator(str(tb_folder(tmp_path, folders[i])))
        acc.Reload()
        rows = [tracked(r) for r in rows_of(i)]
        assert set(acc.Tags()["scalars"]) == set(rows[0]) | ({"best_epoch"} if i == 0 else set())
        assert "gd_step" in rows[0] and "step" not in acc.Tags()["scalars"]
        for tag in rows[0]:
            events = acc.Scalars(tag)
            assert [e.step for e in events] == [0, 1, 2, 3]  # step = epoch
            assert [e.value for e in events] == pytest.approx([r[tag] for r in rows], rel=1e-6)  # float32
        if i == 0:
            assert [(e.step, e.value) for e in acc.Scalars("best_epoch")] == [(3, 2.0)]
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hp = start.session_start_info.hparams
        assert hp["run_id"].string_value == rid and hp["optim.lr"].number_value == pytest.approx(0.001)
        assert hp["width"].number_value == 8 and hp["seed"].number_value == i
        assert hp["n_params"].number_value == 1000 + i
        assert hp["model.name"].string_value == "mlp" and "optim.betas" not in hp and "data.root" not in hp
        assert set(hp) == PARAMS - {"optim.betas", "data.root"} | {"run_id", "n_params"}  # no plumbing
        end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
        assert end.session_end_info.status == api_pb2.Status.Value("STATUS_SUCCESS")

    again = tracking.open_logger({"name": "tensorboard"}, run_info(tmp_path, run_id=ids[0]))  # a rerun
    train_packed([again])
    assert sorted(p.name for p in tb_folder(tmp_path, "").iterdir()) == folders
    assert len(list(tb_folder(tmp_path, folders[0]).glob("events.out.tfevents.*"))) == 1


# ----------------------------------------------------------------------------- mlflow


@pytest.fixture
def no_mlflow_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow SQLite store with its tables made: creating them (MLflow's migrations) takes seconds."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(tmp_path, empty_store, no_mlflow_env):
    """<tmp>/results/_mlflow/mlflow.db, where the logger's default store goes, copied from the empty store."""
    import shutil

    (tmp_path / "results" / "_mlflow").mkdir(parents=True)
    shutil.copy(empty_store, tmp_path / "results" / "_mlflow" / "mlflow.db")


def mlflow_client(tmp_path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'results' / '_mlflow' / 'mlflow.db'}")


def children_and_parent(client, experiment: str):
    """({ddescent run id: its MLflow run}, the sweep's parent run), read back with MLflow's own client; asserts
    there is one parent and every run is its child (the `mlflow.parentRunId` tag MLflow's UI nests by)."""
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if "ddescent.sweep" in r.data.tags]
    assert len(parents) == 1, [r.data.tags for r in runs]
    children = {r.data.tags["ddescent.run_id"]: r for r in runs if r not in parents}
    assert len(children) == len(runs) - 1  # nothing else in the experiment
    assert {r.data.tags["mlflow.parentRunId"] for r in children.values()} == {parents[0].info.run_id}
    return children, parents[0]


def test_mlflow_client_lists_one_run_per_ddescent_run(tmp_path, mlflow_store):
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    configs = [dict(CONFIG, seed=i, note="x" * 700) for i in range(3)]  # longer than any MLflow server takes
    loggers = [tracking.open_logger({"name": "mlflow", "tracking_uri": None},
                                    dict(run_info(tmp_path, run_id=r, label=f"seed={i}"), config=configs[i]))
               for i, r in enumerate(ids)]
    for i, logger in enumerate(loggers):  # the models are built: the runner's "start" event
        logger.describe({"n_params": 1000 + i})
    train_packed(loggers, summaries=[{"best_epoch": 2}, {}, {}], statuses=["complete", "diverged", "failed"])

    client = mlflow_client(tmp_path)
    runs, parent = children_and_parent(client, "exp")
    assert sorted(runs) == ids
    assert parent.info.run_name == "exp" and parent.data.tags["ddescent.folder"] == str(tmp_path / "results" / "exp")
    for i, rid in enumerate(ids):
        run = runs[rid]
        assert run.info.run_name == f"mlp-w8-n200-s{i}"  # what varies; the run id is the tag
        assert run.data.tags["ddescent.label"] == f"seed={i}"
        assert run.info.status == ["FINISHED", "FINISHED", "FAILED"][i]
        assert run.data.tags["ddescent.status"] == ["complete", "diverged", "failed"][i]
        params = run.data.params
        assert set(params) == PARAMS | {"note", "n_params"}  # no plumbing (results, progress, plot, logger...)
        assert params["n_params"] == str(1000 + i) and params["seed"] == str(i) and params["width"] == "8"
        assert params["optim.lr"] == "0.001" and params["model.name"] == "mlp"
        assert params["optim.betas"] == "[0.9, 0.999]" and params["data.root"] == "null"
        assert len(params["note"]) == 500 and params["note"].endswith("...")
        rows = [tracked(r) for r in rows_of(i)]
        for key in rows[0]:
            history = client.get_metric_history(run.info.run_id, key)
            assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in rows]
        assert "step" not in run.data.metrics  # MLflow's own step is the epoch; the optimizer's is gd_step
        assert "val_error" not in run.data.metrics and "sws_pi" not in run.data.metrics
    assert runs["aaaaaaaaaaaa"].data.metrics["best_epoch"] == 2
    assert not (tmp_path / "mlruns").exists()  # nothing lands in the working directory


def test_mlflow_keeps_one_run_per_ddescent_run_across_attempts(tmp_path, mlflow_store):
    """An attempt killed mid-run, then one that finishes, then a rerun (--force): the experiment lists one
    MLflow run, the last attempt's, with each metric point once; the earlier ones are in MLflow's trash."""
    from mlflow.entities import ViewType

    killed = tracking.open_logger({"name": "mlflow"}, run_info(tmp_path))
    killed.log(rows_of(0)[0], 0)  # ... and the process dies without close()
    client = mlflow_client(tmp_path)
    experiment = client.get_experiment_by_name("exp").experiment_id
    (first,) = client.search_runs([experiment], "tags.`ddescent.run_id` = 'aaaaaaaaaaaa'")
    assert first.data.metrics["test_error"] == 0.5  # the first evaluation is sent at once, not held back
    for _ in range(2):  # the attempt after the kill; then a rerun with --force
        train_packed([tracking.open_logger({"name": "mlflow"}, run_info(tmp_path))])
    runs = client.search_runs([experiment], "tags.`ddescent.run_id` = 'aaaaaaaaaaaa'")
    assert [r.info.status for r in runs] == ["FINISHED"]
    children_and_parent(client, "exp")  # every attempt under the one parent
    history = client.get_metric_history(runs[0].info.run_id, "test_loss")
    assert [m.step for m in history] == [0, 1, 2, 3]  # not doubled by the attempts before
    trash = client.search_runs([experiment], run_view_type=ViewType.DELETED_ONLY)
    assert len(trash) == 2 and first.info.run_id in {r.info.run_id for r in trash}


def test_mlflow_tracking_uri_comes_from_config_then_env_then_results(tmp_path, monkeypatch):
    info = run_info(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = mlflow_uri({}, info)
    assert default == f"sqlite:///{(tmp_path / 'results' / '_mlflow' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.invalid:5000")
    assert mlflow_uri({"tracking_uri": None}, info) == "http://tracking.invalid:5000"
    assert mlflow_uri({"tracking_uri": "sqlite:///x.db"}, info) == "sqlite:///x.db"


# ----------------------------------------------------------------------------- wandb


def test_wandb_is_offline_unless_configured(tmp_path, monkeypatch):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert wandb_mode({}) == "offline"
    assert wandb_mode({"mode": "online"}) == "online"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_mode({}) is None  # W&B's own choice: online with the key
    monkeypatch.delenv("WANDB_API_KEY")
    (tmp_path / ".netrc").write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_mode({}) is None


def test_wandb_offline_runs_open_side_by_side(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    loggers = [tracking.open_logger({"name": "wandb"}, run_info(tmp_path, run_id=r)) for r in ids]
    assert all(logger.impl is not None for logger in loggers)
    train_packed(loggers)
    folder = tmp_path / "results" / "exp" / "_logs" / "wandb"
    files = sorted(folder.glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    for _ in range(100):  # W&B's service writes the last records just after finish() returns
        blobs = [f.read_bytes() for f in files]
        if all(sum(rid.encode() in b and b"train_error" in b for b in blobs) == 1 for rid in ids):
            break
        time.sleep(0.1)
    for rid in ids:  # the run's id (a tag) and its metrics are in exactly one run file
        assert sum(rid.encode() in b and b"train_error" in b for b in blobs) == 1
    for blob in blobs:  # named as MLflow and TensorBoard name it, grouped by the experiment
        assert tracking.run_name(CONFIG).encode() in blob and b"exp" in blob
    assert all(logger.impl is None for logger in loggers)
    import wandb

    wandb.teardown()  # its service and threads end here, not in the middle of later tests


# ----------------------------------------------------------------------------- failures


def test_a_backend_that_is_not_installed_warns_once(tmp_path, caplog, monkeypatch, no_mlflow_env):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    loggers = [tracking.open_logger({"name": "mlflow"}, run_info(tmp_path, run_id=f"{i:012d}")) for i in range(3)]
    train_packed(loggers)
    assert warnings_of(caplog) == ['logger=mlflow: not installed; pip install "ddescent[mlflow]"; '
                                   'the run goes on without it']


def test_an_unreachable_tracking_server_warns_once_and_quickly(tmp_path, caplog, no_mlflow_env):
    pytest.importorskip("mlflow")
    start = time.perf_counter()
    # Port 1 on the loopback address: nothing listens there, the connection is refused at once.
    loggers = [tracking.open_logger({"name": "mlflow", "tracking_uri": "http://127.0.0.1:1"}, run_info(tmp_path))
               for _ in range(2)]
    train_packed(loggers)
    assert time.perf_counter() - start < 30
    (message,) = warnings_of(caplog)
    assert message.startswith("logger=mlflow: tracking server http://127.0.0.1:1 unreachable")


def test_a_disk_failure_warns_once(tmp_path, caplog):
    (tmp_path / "results").write_text("a file where the results folder should be")
    loggers = [tracking.open_logger({"name": "csv"}, run_info(tmp_path, run_id=r)) for r in ("a" * 12, "b" * 12)]
    train_packed(loggers)
    (message,) = warnings_of(caplog)
    assert message.startswith("logger=csv: ") and "the run goes on without it" in message


def test_a_backend_failing_mid_run_becomes_a_no_op(tmp_path, caplog, monkeypatch):
    logger = tracking.open_logger({"name": "csv"}, run_info(tmp_path))
    calls = []

    def broken(row, step):
        calls.append(step)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logger.impl, "log", broken)
    for row in rows_of(0):
        logger.log(row, row["epoch"])
    logger.close("complete", {})
    assert calls == [0]  # after the first failure nothing reaches the backend
    assert warnings_of(caplog) == ["logger=csv: [Errno 28] No space left on device; the run goes on without it"]


# ----------------------------------------------------------------------------- through the command line


def records_of(results):
    from ddescent import store

    df = store.load(results / "fig9_9")
    return {rid: frame.sort_values("epoch") for rid, frame in df.groupby("run_id")}


METRICS = ("step", "wall_time_s", "train_error", "train_loss", "test_error", "test_loss")
NAMED = {"step": "gd_step"}  # the records' columns as MLflow and TensorBoard name them


def test_a_packed_sweep_logs_each_run_to_mlflow_once(tiny, tmp_path, mlflow_store):
    from conftest import cli

    results = tmp_path / "results"
    for again in ([], ["--force"]):  # a rerun with --force replaces each MLflow run instead of adding one
        r = cli("sweep", "width=4,8", *tiny, "logger=mlflow", "--results", str(results), "--no-plot", *again)
        assert r.returncode == 0, r.stderr
        assert "logger=" not in r.stderr
    client = mlflow_client(tmp_path)
    by_id, parent = children_and_parent(client, "fig9_9")
    records = records_of(results)
    assert sorted(by_id) == sorted(records) and len(records) == 2
    assert parent.info.status == "FINISHED" and not client.list_artifacts(parent.info.run_id)  # --no-plot
    for rid, frame in records.items():
        run = by_id[rid]
        width = int(frame.width.iloc[0])
        assert run.info.run_name == f"mlp-w{width}-n200-s0"
        assert run.info.status == "FINISHED" and run.data.tags["ddescent.status"] == "complete"
        config = json.loads(frame.config.iloc[0])
        assert run.data.params == {**{k: _param_text(v) for k, v in tracking.params_of(config).items()},
                                   "n_params": str(frame.n_params.iloc[0])}
        assert run.data.params["width"] == str(width) and run.data.params["seed"] == "0"
        assert not {"results", "progress", "plot", "figures", "name", "logger.name"} & set(run.data.params)
        for key in METRICS:
            history = client.get_metric_history(run.info.run_id, NAMED.get(key, key))
            assert [(m.step, m.value) for m in history] == list(zip(frame.epoch, frame[key].astype(float)))
        assert "step" not in run.data.metrics
        assert not client.get_metric_history(run.info.run_id, "val_error")  # NaN: no validation split


def hparams_sessions(logdir) -> dict:
    """What TensorBoard's HPARAMS tab lists for `tensorboard --logdir logdir`, asked of its own hparams backend:
    {session name: (hparams, {metric: last value})}."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer,
                               data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100,
                                               allowed_statuses=list(api_pb2.Status.values()))
    groups = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()
    out = {}
    for group in groups.session_groups:
        hparams = {k: v.string_value if v.HasField("string_value") else v.number_value
                   for k, v in group.hparams.items()}
        out[group.name] = (hparams, {m.name.tag: m.value for m in group.metric_values})
    return out


def test_tensorboard_hparams_tab_shows_each_run_by_width_and_seed(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    from conftest import cli

    results = tmp_path / "results"
    for again in ([], ["--force"]):  # a rerun replaces a run's events: no second session, no doubled points
        r = cli("sweep", "width=4,8", *tiny, "logger=tensorboard", "--results", str(results), "--no-plot", *again)
        assert r.returncode == 0, r.stderr
    sessions = hparams_sessions(results / "fig9_9" / "_logs" / "tensorboard")
    records = records_of(results)
    assert len(sessions) == 2
    for rid, frame in records.items():
        width = int(frame.width.iloc[0])
        hparams, metrics = sessions[f"mlp-w{width}-n200-s0-{rid}"]
        assert hparams["width"] == width and hparams["seed"] == 0 and hparams["n_train"] == 200
        assert hparams["run_id"] == rid and hparams["n_params"] == frame.n_params.iloc[0]
        assert not {"results", "progress", "plot", "name", "logger.name", "model.width"} & set(hparams)
        last = frame.iloc[-1]
        for key in METRICS:  # the final metrics beside the hparams
            assert metrics[NAMED.get(key, key)] == pytest.approx(float(last[key]), rel=1e-6)
        assert "step" not in metrics


def test_quiet_silences_mlflow(tiny, tmp_path, no_mlflow_env, monkeypatch):
    """-q: nothing from MLflow either; neither its log lines (the tables it creates in a new store) nor the "View
    run ... at: <url>" it prints to stdout when a run ends on a tracking server (here a SQLite store that MLflow
    is made to take for one, so that it prints)."""
    pytest.importorskip("mlflow")
    from conftest import cli
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._tracking_service import client as service

    monkeypatch.setattr(service, "RestStore", SqlAlchemyStore)
    monkeypatch.setattr(service, "get_workspace_url", lambda: "http://mlflow.test")
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    said: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: said.append(record.getMessage())
    mlflow_log, ddescent_log = logging.getLogger("mlflow"), logging.getLogger("ddescent")
    saved = ddescent_log.level, ddescent_log.propagate
    mlflow_log.addHandler(handler)
    try:
        loud = cli("run", "width=8", *tiny, "logger=mlflow", "--results", str(tmp_path / "loud"))
        assert loud.returncode == 0, loud.stderr
        assert "View run mlp-w8-n200-s0 at: http://mlflow.test" in loud.stdout  # (so MLflow does print here)
        assert any("database tables" in line for line in said)
        said.clear()
        quiet = cli("run", "width=8", *tiny, "logger=mlflow", "--results", str(tmp_path / "quiet"), "-q")
        assert quiet.returncode == 0, quiet.stderr
        assert "View run" not in quiet.stdout + quiet.stderr and said == []
        assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ  # (set only around MLflow's calls)
    finally:
        mlflow_log.removeHandler(handler)
        ddescent_log.setLevel(saved[0])
        ddescent_log.propagate = saved[1]


def test_a_run_writes_its_csv_and_goes_on_when_a_tracker_fails(tiny, tmp_path):
    from conftest import cli

    results = tmp_path / "results"
    r = cli("run", "width=8", *tiny, "logger=csv", "--results", str(results))
    assert r.returncode == 0, r.stderr
    (rid, frame), = records_of(results).items()
    with open(results / "fig9_9" / "_logs" / "csv" / f"{rid}.csv", newline="") as f:
        got = list(csv.DictReader(f))
    for key in ("epoch",) + METRICS:
        assert [float(row[key]) for row in got] == frame[key].astype(float).tolist()

    other = tmp_path / "other"  # a tracking server that is not there: one line, and the run completes
    r = cli("run", "width=8", *tiny, "logger=mlflow", "logger.tracking_uri=http://127.0.0.1:1",
            "--results", str(other))
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "logger=mlflow" in line]
    if "mlflow" in sys.modules or _installed("mlflow"):
        assert len(lines) == 1 and "unreachable" in lines[0]
    else:
        assert len(lines) == 1 and "not installed" in lines[0]
    assert len(records_of(other)) == 1


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_a_sweep_is_one_parent_run_with_its_figures_and_a_resumed_sweep_reuses_it(tiny, tmp_path, mlflow_store):
    """MLflow's UI nests a sweep's runs under one parent run (the experiment folder's), whose artifacts are the
    sweep's figures; a later sweep into the folder (here: one more width) adds its runs under the same parent."""
    from conftest import cli

    results = tmp_path / "results"
    client = mlflow_client(tmp_path)
    for widths in ("4,8", "4,8,16"):
        r = cli("sweep", f"width={widths}", *tiny, "logger=mlflow", "--results", str(results))
        assert r.returncode == 0 and "logger=" not in r.stderr, r.stderr
        runs, parent = children_and_parent(client, "fig9_9")
        assert sorted(runs) == sorted(records_of(results)) and len(runs) == len(widths.split(","))
        assert parent.info.status == "FINISHED"
        drawn = sorted(f"figures/{p.name}" for p in (results / "fig9_9" / "_figures").glob("*.png"))
        assert drawn == ["figures/fig9_10.png", "figures/fig9_9.png"]  # the preset's figures: 9.9 and 9.10
        assert sorted(a.path for a in client.list_artifacts(parent.info.run_id, "figures")) == drawn
        if widths == "4,8":
            first = parent.info.run_id
    assert parent.info.run_id == first
    drawn = results / "fig9_9" / "_figures" / "fig9_9.png"
    local = client.download_artifacts(first, "figures/fig9_9.png", str(tmp_path / "got"))
    assert Path(local).read_bytes() == drawn.read_bytes()  # the figure of the last sweep, all three widths


def test_a_single_run_and_a_python_sweep_end_their_parent_run_too(tiny, tmp_path, mlflow_store):
    """`ddescent run` and ddescent.sweep() draw no figures, but their parent run ends as a sweep's does."""
    import ddescent
    from conftest import cli

    results = tmp_path / "results"
    client = mlflow_client(tmp_path)
    r = cli("run", "width=4", *tiny, "logger=mlflow", "--results", str(results))
    assert r.returncode == 0, r.stderr
    assert children_and_parent(client, "fig9_9")[1].info.status == "FINISHED"
    ddescent.sweep(["width=8", *[t for t in tiny if t != "progress=off"], "logger=mlflow", "name=py"], results)
    assert children_and_parent(client, "py")[1].info.status == "FINISHED"
