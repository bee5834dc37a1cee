import os

import pandas as pd
import pytest

from ddescent import store
from ddescent.config import compose, run_config
from ddescent.spec import run_id


def test_write_is_atomic_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "runs" / "abc.parquet"
    frame = pd.DataFrame({"run_id": ["abc"], "epoch": [0], "test_error": [0.5]})
    store.write_run(frame, path)
    assert pd.read_parquet(path).equals(frame)
    assert os.listdir(path.parent) == ["abc.parquet"]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "runs" / "bad.parquet"

    class Unwritable:  # pyarrow cannot convert this: the write fails half way
        pass

    with pytest.raises(Exception):
        store.write_run(pd.DataFrame({"run_id": ["x"], "obj": [Unwritable()]}), path)
    assert not path.exists() and os.listdir(path.parent) == []


def run_frame(run_id, **columns):
    """The columns a reader needs of a run file, and any others."""
    return pd.DataFrame({"run_id": [run_id], "status": ["complete"], "epoch": [1], "width": [4.0],
                         "train_error": [0.1], "test_error": [0.2], **{k: [v] for k, v in columns.items()}})


def test_load_skips_foreign_and_damaged_files_and_dotfiles(tmp_path):
    runs = tmp_path / "exp" / "runs"
    store.write_run(run_frame("a", x=1.0), runs / "a.parquet")
    store.write_run(run_frame("b", y=2.0), runs / "b.parquet")  # newer column
    (runs / "junk.parquet").write_bytes(b"not parquet")
    (runs / ".c-123.tmp").write_bytes(b"half a file")
    store.write_run(pd.DataFrame({"other": [1]}), runs / "foreign.parquet")
    with pytest.warns(UserWarning, match="skipping"):
        df = store.load(tmp_path)
    assert sorted(df["run_id"]) == ["a", "b"]
    assert {"x", "y"} <= set(df.columns)


@pytest.mark.parametrize("lines", [
    [[f"width={w}"] for w in (2, 47, 300)],
    [["experiment=lambda", "regularizer=l2", f"reg_strength={lam}", "optim.lr=0.1"] for lam in (0.5, 5)],
    [["model=cnn1d", "width=4", "n_train=null", "train.batch_size=32"], ["width=8", "+train.extra=1"],
     ["experiment=fig9_11", "n_train=1000", "width=47", "label_noise=0.2", "seed=3"]],
])
def test_fast_composition_equals_hydra_compose(lines):
    """Planning composes each set of group choices once and applies the plain overrides itself: the configs
    must be exactly those Hydra composes line by line."""
    from omegaconf import OmegaConf

    from ddescent.config import compose_all

    fast = [OmegaConf.to_container(c, resolve=True) for c in compose_all(lines)]
    assert fast == [OmegaConf.to_container(compose(line), resolve=True) for line in lines]


def test_fast_composition_reports_a_misspelt_key_like_hydra():
    from ddescent import ConfigError
    from ddescent.config import compose_all

    with pytest.raises(ConfigError, match="widht"):
        compose_all([["width=4"], ["widht=4"]])


def test_a_new_optional_key_leaves_run_ids_unchanged():
    """Keys whose value is null are not part of a run's identity, so a release that adds an optional key
    (null by default) still skips the runs stored by the previous one."""
    config = run_config(compose(["width=16"]))
    older = {**config, "model": {k: v for k, v in config["model"].items() if k != "ratios"}}
    assert config["model"]["ratios"] is None and run_id(older) == run_id(config)
