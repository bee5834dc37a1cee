"""Extending a sweep (more epochs for runs that finished: ddescent.extension), and what the records say of a run's
life: started_at kept across a resume, resumed_at, integer widths."""

import json
import time

import numpy as np
import pytest

import ddescent
from conftest import cli

SMALL = ["data.num_samples=1000", "n_train=200", "train.eval_points=8", "progress=off", "width=4,8", "seed=0,1"]
METRICS = ["train_error", "test_error", "train_loss", "test_loss"]


def _sweep(results, *args):
    r = cli("sweep", *SMALL, *args, "--results", str(results), "--no-plot")
    assert r.returncode == 0, r.stderr
    return r


def test_more_epochs_continue_the_finished_runs_and_equal_a_fresh_run(data_cache, tmp_path):
    _sweep(tmp_path / "R", "epochs=20")
    short = ddescent.load(tmp_path / "R")
    plan = cli("sweep", *SMALL, "epochs=40", "--results", str(tmp_path / "R"), "--dry-run")
    assert plan.stdout.count("trains epochs 21-40") == 4, plan.stdout
    r = _sweep(tmp_path / "R", "epochs=40")
    assert "4 to run (4 extend shorter runs)" in r.stderr
    assert "training epochs 21-40 only" in r.stderr, r.stderr
    both = ddescent.load(tmp_path / "R")
    long = both[both["epochs"] == 40]
    assert long["run_id"].nunique() == 4 and set(long["extends"]) == set(short["run_id"])  # new runs, named bases

    # The first 20 epochs are the original's records, row for row.
    for base, rows in short.groupby("run_id"):
        ext = long[long["extends"] == base]
        kept = ext[ext["epoch"] <= 20].reset_index(drop=True)
        assert kept["epoch"].tolist() == rows["epoch"].tolist()
        assert np.array_equal(kept[METRICS].to_numpy(), rows.reset_index(drop=True)[METRICS].to_numpy())
        assert ext["epoch"].max() == 40

    # A fresh 40-epoch sweep computes the same numbers at every epoch both evaluated (README: bit-identical on one
    # machine; the evaluation epochs up to 20 are the original's, after it the 40-epoch run's).
    _sweep(tmp_path / "F", "epochs=40")
    fresh = ddescent.load(tmp_path / "F")
    assert set(fresh["run_id"]) == set(long["run_id"])  # the same runs, by identity
    m = long.merge(fresh, on=["run_id", "epoch"], suffixes=("", "_fresh"))
    assert len(m) >= 4 * 6 and (m["epoch"] > 20).sum() >= 4 * 2
    for c in METRICS:
        assert np.array_equal(m[c].to_numpy(), m[f"{c}_fresh"].to_numpy()), c
    assert fresh["extends"].isna().all()


def test_a_run_whose_state_was_not_kept_is_trained_from_the_start_and_the_plan_says_so(data_cache, tmp_path):
    _sweep(tmp_path, "epochs=6", "train.keep_final=false")
    assert not list((tmp_path / "fig9_9" / "_final").glob("*.pt"))
    plan = cli("sweep", *SMALL, "epochs=12", "--results", str(tmp_path), "--dry-run")
    assert plan.stdout.count("trained from the start: its 6-epoch run") == 4, plan.stdout
    assert plan.stdout.count("kept no final state") == 4
    r = _sweep(tmp_path, "epochs=12")
    assert "extends" not in r.stderr
    long = ddescent.load(tmp_path)
    assert long[long["epochs"] == 12]["extends"].isna().all()


def test_a_kept_state_is_continued_whole_or_not_at_all(data_cache, tmp_path):
    # Five widths of one seed: some train in one pack; extending one of them alone cannot use the pack's state.
    _sweep(tmp_path, "epochs=6", "seed=0", "width=2,3,4,5,6")
    finals = list((tmp_path / "fig9_9" / "_final").glob("*.json"))
    packs = [json.loads(f.read_text())["runs"] for f in finals]
    if all(len(p) == 1 for p in packs):
        pytest.skip("the planner trained each run alone here: no shared pack to split")
    lone = next(p for p in packs if len(p) > 1)[0]
    df = ddescent.load(tmp_path)
    width = df.loc[df["run_id"] == lone, "width"].iloc[0]
    plan = cli("sweep", *SMALL, "seed=0", f"width={width}", "epochs=12", "--results", str(tmp_path), "--dry-run")
    assert "kept its final state with runs this sweep does not extend" in plan.stdout, plan.stdout
    whole = cli("sweep", *SMALL, "seed=0", "width=2,3,4,5,6", "epochs=12", "--results", str(tmp_path), "--dry-run")
    assert whole.stdout.count("trains epochs 7-12") == 5, whole.stdout


def test_force_retrains_instead_of_extending(data_cache, tmp_path):
    _sweep(tmp_path, "epochs=6", "width=4", "seed=0")
    r = _sweep(tmp_path, "epochs=12", "width=4", "seed=0", "--force")
    assert "extends" not in r.stderr
    assert ddescent.load(tmp_path).query("epochs == 12")["extends"].isna().all()


def test_started_at_survives_a_resume_and_resumed_at_says_when(data_cache, tmp_path):
    from ddescent import orchestrate, runner

    jobs = orchestrate.plan([*SMALL, "width=4", "seed=0", "epochs=8", "train.checkpoint_every=2"], tmp_path)

    class Killed(Exception):
        pass

    def kill_at_5(kind, payload):
        if kind == "epoch" and payload["epoch"] == 5:
            raise Killed

    with pytest.raises(Killed):
        runner.execute([j.spec for j in jobs], kill_at_5)
    time.sleep(1.1)  # the timestamps are to the second
    runner.execute([j.spec for j in jobs])
    df = ddescent.load(tmp_path)
    started, resumed, finished = df[["started_at", "resumed_at", "finished_at"]].iloc[0]
    assert started < resumed <= finished


def test_widths_are_integers_where_they_are_whole(data_cache, tmp_path):
    _sweep(tmp_path, "epochs=2", "width=4", "seed=0")
    df = ddescent.load(tmp_path)
    assert df["width"].dtype.kind == "i"
    assert df[["width"]].to_csv(index=False).splitlines()[1] == "4"
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = next((tmp_path / "fig9_9" / "runs").glob("*.parquet"))  # as an older version wrote it: 4.0
    table = pq.read_table(path)
    i = table.column_names.index("width")
    pq.write_table(table.set_column(i, "width", table.column(i).cast(pa.float64())), path)
    assert ddescent.load(tmp_path)["width"].dtype.kind == "i"
