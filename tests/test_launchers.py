"""The same sweep through Hydra's launchers: joblib (--jobs) and submitit_local (SLURM's stand-in)."""

from conftest import cli
from ddescent import store


def _check(res, n):
    df = store.load(res / "fig9_9")
    assert df.run_id.nunique() == n and (df.status == "complete").all()
    assert not list((res / "fig9_9" / "runs").glob(".*"))


def test_jobs_runs_through_the_joblib_launcher(tiny, tmp_path):
    res = tmp_path / "r"
    r = cli("sweep", "width=4,8,300", *tiny, "seed=0,1", "--jobs", "2", "--results", str(res), "--no-plot",
            process=True)
    assert r.returncode == 0, r.stderr
    assert "Joblib" in r.stdout + r.stderr
    _check(res, 6)
    r = cli("sweep", "width=4,8,300", *tiny, "seed=0,1", "--jobs", "2", "--results", str(res), "--no-plot",
            process=True)
    assert "6 already done, 0 to run" in r.stderr


def test_submitit_local_launcher(tiny, tmp_path):
    res = tmp_path / "r"
    r = cli("sweep", "width=4,300", *tiny, "hydra/launcher=submitit_local", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.timeout_min=10", "--results", str(res), "--no-plot", process=True)
    assert r.returncode == 0, r.stderr
    _check(res, 2)


def test_shipped_slurm_launcher_config_composes():
    from ddescent.config import compose

    launcher = compose(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], hydra=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.max_num_timeout == 20
