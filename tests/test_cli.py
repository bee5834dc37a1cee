import re
import json

import pytest

from conftest import cli
from ddescent import store


def test_sweep_writes_schema_figure_and_resumes(tiny, tmp_path):
    res = tmp_path / "res"
    r = cli("sweep", "width=4,8", *tiny, "seed=0,1", "--results", str(res))
    assert r.returncode == 0, r.stderr
    runs = sorted((res / "fig9_9" / "runs").glob("*.parquet"))
    assert len(runs) == 4
    df = store.load(res / "fig9_9")
    for col in store.COLUMNS:
        assert col in df.columns, col
    final = df[df.epoch == 3]
    assert set(final.width) == {4.0, 8.0} and set(final.seed) == {0, 1}
    assert set(final.n_params) == {4 * 4 + 52 * 4 + 10, 8 * 8 + 52 * 8 + 10}
    assert (df.n_train == 200).all() and (df.n_test == 750).all() and (df.status == "complete").all()
    assert json.loads(df.config.iloc[0])["model"]["name"] == "mlp"
    assert (res / "fig9_9" / "_figures" / "fig9_9.png").stat().st_size > 10_000
    mtimes = {p: p.stat().st_mtime_ns for p in runs}
    # rerun: everything is done, nothing is rewritten
    r = cli("sweep", "width=4,8", *tiny, "seed=0,1", "--results", str(res), "--no-plot")
    assert r.returncode == 0 and "4 already done, 0 to run" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in runs} == mtimes
    # a wider sweep runs only the new jobs
    r = cli("sweep", "width=4,8,16", *tiny, "seed=0,1", "--results", str(res), "--no-plot")
    assert "4 already done, 2 to run" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in runs} == mtimes
    # --force reruns
    r = cli("sweep", "width=4", *tiny, "seed=0", "--results", str(res), "--no-plot", "--force")
    assert r.returncode == 0
    assert sum(p.stat().st_mtime_ns != mtimes[p] for p in runs) == 1
    # ls and plot from parquet alone
    r = cli("ls", str(res / "fig9_9"))
    assert r.returncode == 0 and len([l for l in r.stdout.splitlines() if "complete" in l]) == 6
    r = cli("plot", str(res / "fig9_9"), "--figure", "9.9", "-o", str(tmp_path / "f.png"))
    assert r.returncode == 0 and (tmp_path / "f.png").exists()


def test_dry_run_lists_jobs_and_writes_nothing(tiny, tmp_path):
    r = cli("sweep", "width=4,8,16", *tiny, "--results", str(tmp_path / "r"), "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if "pending" in l]
    assert len(lines) == 4  # 3 jobs and the summary
    assert "TFLOP" in r.stdout
    assert not (tmp_path / "r").exists()


def test_default_sweep_is_the_fig9_9_recipe(data_cache, tmp_path):
    r = cli("sweep", "--dry-run", "--results", str(tmp_path))  # not ./results: a user's finished runs are skipped
    assert r.returncode == 0
    assert "57 jobs" in r.stdout  # 19 widths x seeds 0, 1, 2
    tflop = float(re.search(r"about ([0-9.]+) TFLOP", r.stdout.splitlines()[-1]).group(1))
    assert abs(tflop / 3 - 3.4) < 0.1  # ~3.4 TFLOP a seed, design §5


@pytest.mark.parametrize("bad, key", [
    (["width=-3"], "width"),
    (["width=abc"], "width"),
    (["label_noise=1.5"], "label_noise"),
    (["model=nosuch"], "model"),
    (["nosuchkey=1"], "nosuchkey"),
    (["n_train=100000"], "n_train"),
    (["width=8,-1"], "width"),
    (["experiment=nosuch"], "experiment"),
    (["model.ratios=[1,0]"], "model.ratios"),
    (["regularizer=sws", "regularizer.codebook_epochs=-2"], "regularizer.codebook_epochs"),
])
def test_bad_input_fails_fast_with_one_line(bad, key, tiny, tmp_path):
    res = tmp_path / "r"
    r = cli("sweep", *tiny, *bad, "--results", str(res))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not res.exists()


def test_run_and_config_commands(tiny, tmp_path):
    r = cli("config", "width=5")
    assert r.returncode == 0 and "width: 5" in r.stdout
    r = cli("run", "width=5", *tiny, "--results", str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("complete")
    r = cli("run", "width=5,6", *tiny, "--results", str(tmp_path))
    assert r.returncode == 2 and "`ddescent run` trains one run" in r.stderr


def test_run_takes_a_presets_values_not_its_sweep_axes(data_cache):
    """As Hydra's run mode: `ddescent run experiment=fig9_11` is the preset's own config (n_train 4000, seed 0), not
    the first job of its sweep (n_train 1000); --cfg shows what would run."""
    r = cli("run", "experiment=fig9_11", "width=47", "--cfg", "job")
    assert r.returncode == 0, r.stderr
    assert "n_train: 4000" in r.stdout and "width: 47" in r.stdout and "seed: 0" in r.stdout
    assert "n_train: 1000" in cli("sweep", "experiment=fig9_11", "--cfg", "job").stdout


def test_every_command_has_help():
    for cmd in ["sweep", "run", "plot", "ls", "config"]:
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout
