"""The soft-weight-sharing presets (sws_mnist1d, lambda_sws, sws_mnist_lenet300) compose the sweeps their headers
promise, and a tiny sws run through the CLI records the mixture and the quantization report."""

import json
import math
import re

import numpy as np
import pytest

from conftest import TINY, cli
from fake_data import write_mnist
from ddescent import store

JOB = re.compile(r"^(\w{12})\s+pending\s+(\w+) width=(\S+) n_train=(\S+) noise=(\S+) λ=(\S+) seed=(\d+) epochs=(\d+)(?: .*)?$")
QUANT = ("quantized_test_error", "quantized_train_error", "quantized_n_distinct", "quantized_sparsity",
         "compression", "compression_index_only", "quantized_tuned_test_error", "quantized_tuned_train_error")


def dry_run(*args, results):
    r = cli("sweep", *args, "--results", str(results), "--dry-run")
    assert r.returncode == 0, r.stderr
    jobs = [m.groups() for m in map(JOB.match, (line.strip() for line in r.stdout.splitlines())) if m]
    assert jobs and f"{len(jobs)} jobs: 0 done, {len(jobs)} pending" in r.stdout
    assert not results.exists()  # a dry run writes nothing
    return jobs


def config(*args) -> str:
    r = cli("config", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_sws_mnist1d_sweeps_none_l2_and_sws_on_one_model(data_cache, tmp_path):
    jobs = dry_run("experiment=sws_mnist1d", results=tmp_path / "r")
    assert len(jobs) == 3 and len({j[0] for j in jobs}) == 3  # three distinct runs
    assert {(j[1], float(j[2]), float(j[4]), int(j[7])) for j in jobs} == {("mlp", 256.0, 0.0, 150)}
    for reg in ("none", "l2", "sws"):
        out = config("experiment=sws_mnist1d", f"regularizer={reg}")
        assert f"name: {reg}" in out and "name: adam" in out
    sws = config("experiment=sws_mnist1d", "regularizer=sws")
    assert "quantize: true" in sws and "start_epoch: 50" in sws and "n_components: 32" in sws


def test_lambda_sws_sweeps_at_least_five_strengths_at_one_width(data_cache, tmp_path):
    jobs = dry_run("experiment=lambda_sws", results=tmp_path / "r")
    strengths = sorted(float(j[5]) for j in jobs)
    assert len([s for s in strengths if s > 0]) >= 5 and len(set(strengths)) == len(strengths)
    assert len({j[2] for j in jobs}) == 1  # one width
    out = config("experiment=lambda_sws")
    assert "name: sws" in out and "lambda" in out


def test_sws_mnist_lenet300_composes_against_local_mnist_files(data_cache, tmp_path):
    write_mnist(tmp_path / "data" / "mnist")
    jobs = dry_run("experiment=sws_mnist_lenet300", f"data.root={tmp_path / 'data'}", results=tmp_path / "r")
    assert len(jobs) == 1 and jobs[0][1] == "mlp" and float(jobs[0][2]) == 300 and float(jobs[0][5]) == 0.003
    out = config("experiment=sws_mnist_lenet300", f"data.root={tmp_path / 'data'}")
    assert "name: mnist" in out and "name: sws" in out and "pi_zero: 0.999" in out and "start_epoch: 50" in out
    from ddescent.config import compose
    from ddescent.models import mlp

    assert mlp.hidden(compose(["experiment=sws_mnist_lenet300"]).model) == [300, 100]  # LeNet-300-100


def test_missing_mnist_files_are_a_config_error_not_a_crash(data_cache, tmp_path):
    r = cli("sweep", "experiment=sws_mnist_lenet300", f"data.root={tmp_path / 'nothing'}",
            "--results", str(tmp_path / "r"), "--dry-run")
    assert r.returncode != 0 and "train-images-idx3-ubyte" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("preset", ["sws_mnist1d", "lambda_sws"])
def test_tiny_sws_run_records_the_mixture_and_the_quantization(data_cache, tmp_path, preset):
    K = 8
    r = cli("run", f"experiment={preset}", "regularizer=sws", "reg_strength=1", "width=16",
            "regularizer.start_epoch=1", "regularizer.ramp_epochs=0", f"regularizer.n_components={K}",
            "regularizer.codebook_epochs=2", *TINY, "--results", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    df = store.load(tmp_path / "r" / preset)
    assert (df["status"] == "complete").all() and df["run_id"].nunique() == 1
    for _, row in df.iterrows():  # every evaluation point carries the mixture
        pi, mu, sigma = (list(row[c]) for c in ("sws_pi", "sws_mu", "sws_sigma"))
        assert len(pi) == len(mu) == len(sigma) == K
        assert math.isclose(sum(pi), 1.0, rel_tol=0, abs_tol=1e-5)
        assert all(p >= 0 for p in pi) and all(s > 0 for s in sigma) and mu[0] == 0.0  # pinned zero component
    last = df.sort_values("epoch").iloc[-1]
    for col in QUANT:
        assert col in df and np.isfinite(last[col]), col
    assert 1 <= last["quantized_n_distinct"] <= K
    assert 0 <= last["quantized_sparsity"] <= 1 and 0 <= last["quantized_test_error"] <= 1
    assert last["compression_index_only"] >= last["compression"] > 0  # positions and biases cost bits
    assert 0 <= last["quantized_tuned_test_error"] <= 1
    assert json.loads(last["config"])["regularizer"]["quantize"] is True
