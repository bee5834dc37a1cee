"""Packing: which runs train together as one batched computation, and that a packed run is an ordinary run."""

import numpy as np
import pytest

from ddescent import store
from conftest import plan as specs_of
from ddescent.packing import PACK_MAX, key
from ddescent.runner import execute
from ddescent.spec import RunSpec
from ddescent.planner import packs, plan


def _ids(pack_list):
    return [j.spec.run_id for pack in pack_list for j in pack]


def test_cpu_packs_cover_every_run_once_and_spread_over_the_cores(tmp_path):
    jobs = plan([], str(tmp_path))  # fig9_9: 19 widths
    pack_list = packs(jobs, workers=2)
    assert sorted(_ids(pack_list)) == sorted(j.spec.run_id for j in jobs)
    assert all(len({key(j.spec) for j in pack}) == 1 for pack in pack_list)
    assert len(pack_list) >= 2  # both cores get work
    narrowest = min(pack_list, key=lambda p: p[0].spec.config["width"])
    assert len(narrowest) > 1  # overhead-bound small widths train together


@pytest.mark.parametrize("seeds,expected", [("0", 1), ("0,1,2,3,4", 2)])
def test_on_a_gpu_the_packable_runs_share_as_few_packs_as_fit(tmp_path, seeds, expected):
    jobs = plan([f"seed={seeds}"], str(tmp_path))
    for job in jobs:  # as if train.device=cuda on a machine with one (this test runs anywhere)
        job.accelerator = True
    pack_list = packs(jobs)
    assert sorted(_ids(pack_list)) == sorted(j.spec.run_id for j in jobs)
    assert len(pack_list) == expected and all(len(p) <= PACK_MAX for p in pack_list)


def test_a_packed_run_is_recorded_like_separate_runs(tiny, tmp_path):
    """Same schema and, per run, the same numbers up to float summation order."""
    specs = specs_of(["width=4,12", *tiny], tmp_path / "packed")
    assert [o.status for o in execute(specs)] == ["complete", "complete"]
    for s in specs:
        execute([RunSpec.of({**s.config, "results": str(tmp_path / "apart")})])
    packed, apart = (store.load(tmp_path / d).sort_values(["width", "epoch"]).reset_index(drop=True)
                     for d in ("packed", "apart"))
    assert list(packed.columns) == list(apart.columns) and list(packed.dtypes) == list(apart.dtypes)
    assert packed.run_id.tolist() == apart.run_id.tolist()
    for col in ("train_loss", "test_loss", "train_error", "test_error"):
        np.testing.assert_allclose(packed[col], apart[col], rtol=1e-4, atol=2e-3)


@pytest.mark.slow
def test_after_300_epochs_a_pack_and_its_members_alone_differ_by_less_than_the_seed_spread(data_cache, tmp_path):
    """fig9_9's recipe for 300 epochs, packed and alone (README, Reliability: summation order makes them start
    apart in the last float bits and SGD amplifies that like any perturbation). The differences must stay below
    the spread between seeds of the same width (a draw from the same distribution, not another computation).
    About 2 minutes on 2 cores: python -m pytest -m slow -k 300_epochs"""
    overrides = ["experiment=fig9_9", "width=21,47", "seed=0,1,2", "epochs=300"]
    specs = specs_of(overrides, tmp_path / "packed")
    execute(specs)  # one pack of six
    for s in specs:
        execute([RunSpec.of({**s.config, "results": str(tmp_path / "apart")})])
    cols = ["run_id", "width", "seed", "test_error", "train_error"]
    packed, apart = (store.load(tmp_path / d) for d in ("packed", "apart"))
    packed, apart = (d[d["epoch"] == 300][cols].set_index("run_id").sort_index() for d in (packed, apart))
    gap = (packed["test_error"] - apart["test_error"]).abs()
    spread = apart.groupby("width")["test_error"].agg(lambda v: v.max() - v.min())
    print(f"packed vs alone |delta test error|: {gap.round(4).tolist()}; seed spread by width: {spread.round(4).to_dict()}")
    assert gap.max() > 0  # not the same computation to the bit (else the README's caveat would be moot)
    assert (gap.groupby(packed["width"]).max() < spread).all()
