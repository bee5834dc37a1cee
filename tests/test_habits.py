"""A researcher's habits: Hydra's own flags, presets of one's own, the Python API from a script or stdin,
machine-readable listings and provenance."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import cli

ROOT = Path(__file__).resolve().parents[1]


def write_preset(folder: Path, name="mine", body="epochs: 2\nn_train: 200\ndata:\n  num_samples: 1000\n") -> Path:
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    (folder / "experiment" / f"{name}.yaml").write_text(
        f"# @package _global_\n# My own preset: two widths.\nname: {name}\n{body}"
        "hydra:\n  sweeper:\n    params:\n      width: 3,5\n")
    return folder


def test_cfg_job_prints_the_composed_config_and_cfg_hydra_the_sweep_and_the_launcher(data_cache):
    r = cli("sweep", "--cfg", "job", "experiment=fig9_9_cnn1d")
    assert r.returncode == 0, r.stderr
    assert "name: cnn1d" in r.stdout and "name: fig9_9_cnn1d" in r.stdout and "hydra:" not in r.stdout
    r = cli("sweep", "--cfg", "hydra", "experiment=fig9_9_cnn1d", "seed=0,1", "-p", "hydra.sweeper")
    assert r.returncode == 0, r.stderr
    assert "width: 2,3,4,5,6,8,10" in r.stdout and "seed: 0,1" in r.stdout
    r = cli("sweep", "--cfg", "hydra", "-p", "hydra.launcher", "hydra/launcher=slurm")
    assert "SlurmLauncher" in r.stdout and "max_num_timeout: 20" in r.stdout
    r = cli("sweep", "--info", "defaults")
    assert r.returncode == 0 and "experiment/fig9_9" in r.stdout
    r = cli("sweep", "--cfg", "nonsense")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_config_shows_the_sweep_axes_and_the_launcher(data_cache):
    r = cli("config", "experiment=fig9_9_cnn1d", "seed=0,1")
    assert r.returncode == 0, r.stderr
    assert "# sweep: 42 job(s) over width=2,3,4,5,6,8" in r.stdout and "seed=0,1" in r.stdout
    assert "# launcher: BasicLauncher" in r.stdout


def test_presets_version_and_completion():
    r = cli("presets")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(line.split()[:1] == ["fig9_9"] and "Fig 9.9" in line for line in lines)
    assert any(line.startswith("model=:") and "resnet18" in line for line in lines)
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ddescent {__import__('ddescent').__version__}"
    r = cli("--help")
    assert "--install-completion" in r.stdout and "ddescent presets" in r.stdout


def test_a_user_preset_from_a_config_dir_and_from_hydra_searchpath(tmp_path, data_cache):
    mine = write_preset(tmp_path / "myconf")
    for how in (["--config-dir", str(mine)], [f"hydra.searchpath=[file://{mine}]"]):
        r = cli("sweep", *how, "experiment=mine", "--results", str(tmp_path / "r"), "--dry-run")
        assert r.returncode == 0, r.stderr
        assert "2 jobs: 0 done, 2 pending" in r.stdout and "width=3 " in r.stdout
    # searched before the packaged presets: one of the same name shadows the packaged one
    shadow = write_preset(tmp_path / "shadow", name="fig9_9")
    r = cli("sweep", "--config-dir", str(shadow), "--results", str(tmp_path / "r"), "--dry-run")
    assert "2 jobs" in r.stdout and "epochs=2" in r.stdout
    r = cli("presets", "--config-dir", str(mine))
    assert any(line.split()[:1] == ["mine"] and "My own preset" in line for line in r.stdout.splitlines())


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """ddescent built as a wheel and installed apart from the checkout (its dependencies from this venv)."""
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(dist), str(ROOT)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    (wheel,) = dist.glob("ddescent-*.whl")
    target = tmp_path_factory.mktemp("site")
    zipfile.ZipFile(wheel).extractall(target)  # what pip install puts in site-packages
    return target


def test_a_wheel_installed_outside_the_checkout_finds_a_users_preset(installed_wheel, tmp_path, data_cache):
    mine = write_preset(tmp_path / "MYCONF")
    env = {**os.environ, "PYTHONPATH": str(installed_wheel)}
    code = "import sys, ddescent.cli as c; print(c.__file__, file=sys.stderr); sys.argv[0] = 'ddescent'; c.main()"
    r = subprocess.run([sys.executable, "-c", code, "sweep", "--config-dir", str(mine), "experiment=mine",
                        "--results", str(tmp_path / "r"), "--dry-run"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert str(installed_wheel) in r.stderr.splitlines()[0]  # the wheel's copy ran, not the checkout
    assert "2 jobs: 0 done, 2 pending" in r.stdout


def test_the_python_api_from_stdin_needs_no_main_guard(tmp_path, data_cache):
    """The README's example, fed to a fresh interpreter on stdin (as a notebook kernel runs code: no file, no
    __main__ guard), with enough widths for several packs and so for worker processes."""
    script = (f"import ddescent\n"
              f"df = ddescent.sweep(['width=4,8,16,32,64,128','epochs=2','data.num_samples=1000','n_train=200','seed=0'], "
              f"results={str(tmp_path / 'r')!r})\n"
              "print(len(df), df.run_id.nunique())\n"
              "fig = ddescent.plot(df, figure='9.9')\n"
              "print(type(fig).__name__, len(fig.axes) >= 1)\n"
              "try:\n    ddescent.sweep(['width=-1'], results='x')\nexcept ddescent.ConfigError as e:\n"
              "    print('ConfigError:', e)\n")
    r = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "18 6" and lines[1] == "Figure True"
    assert lines[2].startswith("ConfigError: width=-1") and not (tmp_path / "x").exists()


def test_the_readmes_python_example_runs_as_written(tmp_path, data_cache):
    """The README's "From Python and notebooks" block, taken from the README itself and fed to a fresh
    interpreter on stdin in an empty folder: it trains, prints the final errors, saves a figure, reloads."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- api-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-"], input=block, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "results" / "fig9_9" / "runs").glob("*.parquet"))) == 4
    assert (tmp_path / "fig9_9_short.png").stat().st_size > 10_000
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert sorted(float(row[1]) for row in rows) == [4, 8, 16, 32]  # the block prints a row per width


def test_plot_into_a_callers_axes(tiny, tmp_path):
    import matplotlib.pyplot as plt

    import ddescent

    assert cli("sweep", "width=4,8", *tiny, "--results", str(tmp_path / "r"), "--no-plot").returncode == 0
    df = ddescent.load(tmp_path / "r")
    fig, ax = plt.subplots()
    assert ddescent.plot(df, "9.9", ax=ax) is fig and ax.get_lines()
    plt.close(fig)
    with pytest.raises(ddescent.ConfigError, match="choose one of"):
        ddescent.plot(df, "9.12")


def test_ls_formats_and_provenance(tiny, tmp_path):
    res = tmp_path / "r"
    assert cli("sweep", "width=4,8", "optim.lr=0.01,0.1", *tiny, "--results", str(res), "--no-plot").returncode == 0
    r = cli("ls", str(res), "--format", "json")
    runs = json.loads(r.stdout)
    assert len(runs) == 4 and {run["optim.lr"] for run in runs} == {0.01, 0.1}
    assert all(run["experiment"] == "fig9_9" and run["git_commit"] is None or len(run["git_commit"]) >= 40
               for run in runs)
    r = cli("ls", str(res), "--format", "csv")
    table = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert len(table) == 4 and "started_at" in table and "host" in table
    r = cli("ls", str(res))
    assert r.stdout.splitlines()[0].split()[-1] == "lr"  # a column for what varies
    df = pd.read_parquet(next((res / "fig9_9" / "runs").glob("*.parquet")))
    for col in ("started_at", "finished_at", "host", "ddescent_version", "command", "python_version"):
        assert df[col].notna().all(), col
    assert df["command"].iloc[0].startswith("ddescent sweep width=4,8")
    assert pd.Timestamp(df["finished_at"].iloc[0]) >= pd.Timestamp(df["started_at"].iloc[0])


def test_tab_completion_in_a_fresh_session_lists_the_api():
    # The API loads lazily (importing ddescent does not import torch); dir() must still show it, as a notebook's
    # tab completion asks dir() before anything is used.
    out = subprocess.run([sys.executable, "-c", "import ddescent; print(' '.join(dir(ddescent)))"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert {"sweep", "run", "load", "plot", "finals", "report", "ConfigError"} <= set(out)
