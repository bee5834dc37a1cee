"""The experiment presets of the CPU figures (fig9_10, fig9_11, lambda) and their GPU counterparts compose the
intended sweep: `ddescent sweep experiment=X --dry-run` lists the jobs (no training, nothing written) and the
listed axes are the ones the preset's header promises."""

import re

import pytest

from conftest import cli
from fake_data import write_cifar

LABEL = re.compile(r"^(\w{12})\s+pending\s+(\w+) width=(\S+) n_train=(\S+) noise=(\S+) λ=(\S+) seed=(\d+) epochs=(\d+)(?: .*)?$")


def dry_run(*args, results):
    r = cli("sweep", *args, "--results", str(results), "--dry-run")
    assert r.returncode == 0, r.stderr
    jobs = []
    for line in r.stdout.splitlines():
        m = LABEL.match(line.strip())
        if m:
            _, model, width, n, noise, lam, seed, epochs = m.groups()
            jobs.append(dict(model=model, width=float(width), n_train=None if n == "None" else int(n),
                             noise=float(noise), reg=float(lam), seed=int(seed), epochs=int(epochs)))
    assert f"{len(jobs)} jobs: 0 done, {len(jobs)} pending" in r.stdout
    assert not results.exists()  # a dry run writes nothing
    return jobs, r.stdout


def config(*args):
    r = cli("config", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_fig9_11_two_training_set_sizes_over_a_width_sweep(data_cache, tmp_path):
    jobs, _ = dry_run("experiment=fig9_11", results=tmp_path / "r")
    assert {j["n_train"] for j in jobs} == {1000, 4000}
    widths = sorted({j["width"] for j in jobs})
    assert len(jobs) == 2 * 3 * len(widths) and len(widths) >= 10  # 2 sizes x seeds 0, 1, 2
    assert {j["seed"] for j in jobs} == {0, 1, 2}
    # both interpolation thresholds (n=1000 near h=21, n=4000 near h=47) lie inside the grid
    assert widths[0] <= 8 and widths[-1] >= 100 and {21.0, 47.0, 52.0} <= set(widths)
    assert all(j["model"] == "mlp" and j["noise"] == 0.15 and j["epochs"] == 1000 and j["reg"] == 0 for j in jobs)
    assert "9.11" in config("experiment=fig9_11")


def test_lambda_sweeps_at_least_five_l2_strengths_at_one_width(data_cache, tmp_path):
    jobs, _ = dry_run("experiment=lambda", results=tmp_path / "r")
    assert sorted((j["reg"], j["seed"]) for j in jobs)[:3] == [(5.0, 0), (5.0, 1), (5.0, 2)]  # seeds 0, 1, 2
    strengths = sorted({j["reg"] for j in jobs})
    assert len(strengths) >= 5 and len(jobs) == 3 * len(strengths) and strengths[0] > 0
    assert strengths[-1] / strengths[0] >= 50  # a wide range of 1/lambda
    assert {j["width"] for j in jobs} == {80.0}  # past the n=4000 threshold (h ~ 47 ... 61)
    assert all(j["model"] == "mlp" and j["n_train"] == 4000 and j["noise"] == 0.15 for j in jobs)
    out = config("experiment=lambda")
    assert "name: l2" in out and "lambda" in out


def test_fig9_10_cnn1d_several_widths_with_dense_evaluation(data_cache, tmp_path):
    jobs, _ = dry_run("experiment=fig9_10_cnn1d", results=tmp_path / "r")
    widths = sorted({j["width"] for j in jobs})
    assert len(widths) >= 3 and len(jobs) == len(widths)
    assert len({j["epochs"] for j in jobs}) == 1 and jobs[0]["epochs"] >= 500
    assert all(j["model"] == "cnn1d" and j["n_train"] == 4000 and j["noise"] == 0.15 for j in jobs)
    out = config("experiment=fig9_10_cnn1d")
    assert re.search(r"eval_points: (\d+)", out) and int(re.search(r"eval_points: (\d+)", out).group(1)) >= 40
    assert "heatmap" in out and "9.10" in out and "name: adam" in out and "lr: 0.003" in out


@pytest.fixture
def cifar_root(tmp_path):
    """A small CIFAR-10 folder in the real format: planning reads every file once (their content is part of
    each run's identity)."""
    write_cifar(tmp_path / "data", per_batch=20, n_test=10)
    return tmp_path / "data"


def test_fig9_10_cifar10_resnet18_is_the_nakkiran_epochwise_recipe(cifar_root, tmp_path):
    jobs, _ = dry_run("experiment=fig9_10_cifar10_resnet18", f"data.root={cifar_root}", results=tmp_path / "r")
    widths = sorted({j["width"] for j in jobs})
    assert len(widths) >= 6 and widths[-1] == 64 and len(jobs) == len(widths)
    assert all(j["model"] == "resnet18" and j["noise"] == 0.2 and j["n_train"] is None and j["epochs"] >= 1000
               for j in jobs)
    out = config("experiment=fig9_10_cifar10_resnet18", f"data.root={cifar_root}")
    assert "name: adam" in out and "lr: 0.0001" in out and "augment: true" in out and "batch_size: 128" in out


def test_lambda_cifar10_resnet18_sweeps_l2_at_k64(cifar_root, tmp_path):
    jobs, _ = dry_run("experiment=lambda_cifar10_resnet18", f"data.root={cifar_root}", results=tmp_path / "r")
    strengths = sorted(j["reg"] for j in jobs)
    assert len(strengths) >= 5 and strengths[0] > 0 and strengths[-1] / strengths[0] >= 1000
    assert all(j["model"] == "resnet18" and j["width"] == 64 and j["noise"] == 0.15 for j in jobs)
    out = config("experiment=lambda_cifar10_resnet18", f"data.root={cifar_root}")
    assert "name: l2" in out and "name: adam" in out and "lr: 0.0001" in out


@pytest.mark.parametrize("preset", ["fig9_9_cifar10_cnn5", "fig9_9_cifar10_resnet18", "fig9_10_cifar10_resnet18",
                                    "lambda_cifar10_resnet18"])
def test_cifar_presets_use_nakkirans_wrong_label_noise(preset, data_cache):
    """Nakkiran et al. (2019, §3): "a uniformly random incorrect label", not a uniform redraw (which leaves a
    tenth of the chosen labels right); MNIST-1D keeps the notebook's uniform redraw."""
    r = cli("sweep", "--cfg", "job", "-p", "data.noise_mode", f"experiment={preset}")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "wrong", r.stdout + r.stderr
    r = cli("sweep", "--cfg", "job", "-p", "data.noise_mode", "experiment=fig9_9")
    assert r.stdout.strip().splitlines()[-1] == "uniform"


def test_a_group_the_preset_does_not_train_gets_its_own_folder(data_cache, tmp_path):
    """model=cnn1d on the default preset writes results/fig9_9-cnn1d, never into fig9_9 beside the MLPs."""
    r = cli("sweep", "model=cnn1d", "width=4", "epochs=1", "data.num_samples=1000", "n_train=200", "--no-plot",
            "--results", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["fig9_9-cnn1d"]
    r = cli("sweep", "model=cnn1d", "width=4", "epochs=1", "data.num_samples=1000", "n_train=200", "name=mine",
            "--no-plot", "--results", str(tmp_path / "r"))
    assert r.returncode == 0 and sorted(p.name for p in (tmp_path / "r").iterdir()) == ["fig9_9-cnn1d", "mine"]
