"""Components register themselves: an outside package (tests/plugin_demo, a stand-in for an installed one: a
dist-info folder with entry points, put on PYTHONPATH) adds a model family, a dataset, a regularizer, a logger and a
figure, one module each plus one YAML each for the config groups, without a line of ddescent changed."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import cli
from ddescent import component, figures

DEMO = Path(__file__).parent / "plugin_demo"
ENV = {"PYTHONPATH": str(DEMO)}


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_cache):
    results = tmp_path_factory.mktemp("plugins")
    r = cli("sweep", "model=deep_linear", "data=gaussian_blobs", "regularizer=l1", "logger=jsonl", "reg_strength=0.1",
            "width=2,4", "seed=0", "epochs=3", "n_train=null", "label_noise=0", "name=demo", "progress=off", "figures=['9.9',train-strip]",
            "--config-dir", str(DEMO / "ddescent_demo" / "conf"), "--results", str(results), process=True, env=ENV)
    return results / "demo", r


def test_a_sweep_trains_the_outside_family_on_the_outside_data_with_its_regularizer_and_logger(swept):
    folder, r = swept
    assert r.returncode == 0, r.stderr
    df = pd.concat(pd.read_parquet(p) for p in (folder / "runs").glob("*.parquet"))
    assert set(df["model"]) == {"deep_linear"} and set(df["dataset"]) == {"gaussian_blobs"}
    assert set(df["regularizer"]) == {"l1"} and set(df["reg_strength"]) == {0.1}
    # n_params from the family's closed form: 8 -> w -> w -> 3
    assert dict(df.groupby("width")["n_params"].first()) == {2.0: 8 * 2 + 2 + 2 * 2 + 2 + 2 * 3 + 3,
                                                            4.0: 8 * 4 + 4 + 4 * 4 + 4 + 4 * 3 + 3}
    logged = sorted((folder / "_logs" / "jsonl").glob("*.jsonl"))
    assert len(logged) == 2
    lines = [json.loads(line) for line in logged[0].read_text().splitlines()]
    assert lines[-1] == {"status": "complete"} and [row["epoch"] for row in lines[:-1]] == [0, 1, 2, 3]
    assert (folder / "_figures" / "fig_train_strip.png").stat().st_size > 1000  # drawn at the end of the sweep


def test_the_outside_figure_is_drawn_by_plot_and_listed_with_every_option(swept, tmp_path):
    folder, _ = swept
    out = tmp_path / "strip.png"
    r = cli("plot", str(folder), "--figure", "train-strip", "-o", str(out), process=True, env=ENV)
    assert r.returncode == 0 and out.stat().st_size > 1000, r.stderr
    r = cli("plot", "--help", process=True, env=ENV)
    assert "train-strip (final train error over width as a heat strip)" in " ".join(r.stdout.split())
    # the group YAMLs come through the package's ddescent.conf entry point: no --config-dir needed
    r = cli("presets", process=True, env=ENV)
    lines = r.stdout.splitlines()
    for group, option in (("model", "deep_linear"), ("data", "gaussian_blobs"), ("regularizer", "l1"),
                          ("logger", "jsonl")):
        assert any(line.startswith(f"{group}=:") and option in line for line in lines), (group, lines)
    assert any(line.startswith("figures") and "train-strip" in line for line in lines)


def test_without_the_package_none_of_it_exists():
    assert "deep_linear" not in component.names("model") and "train-strip" not in figures.figures()
