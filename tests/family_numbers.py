"""A 2-epoch run of every family (and of each regularizer), as the numbers it records.

    python tests/family_numbers.py > tests/fixtures/family_numbers.json   # record (only when numbers change on purpose)

tests/test_identity.py reruns these and compares: restructuring the code must not change a single number."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TINY = ["data.num_samples=1000", "n_train=100", "epochs=2", "train.eval_points=2", "progress=off",
        "train.device=cpu", "label_noise=0.1"]
RUNS = {
    "mlp": ["width=8", *TINY],
    "mlp_l2": ["width=8", "regularizer=l2", "reg_strength=0.5", *TINY],
    "mlp_sws": ["width=16", "regularizer=sws", "reg_strength=0.1", "regularizer.n_components=4",
                "regularizer.codebook_epochs=1", "optim=adam", *TINY],
    "cnn1d": ["model=cnn1d", "width=4", *TINY],
    "random_features": ["experiment=fig9_9_rf", "width=50", *TINY],
    "random_features_gd": ["experiment=fig9_9_rf", "width=20", "model.solver=gd", *TINY],
    "cnn5": ["data=mnist", "model=cnn5", "width=2", "optim=adam", "data.augment=true", "n_train=40",
             "epochs=2", "train.eval_points=2", "progress=off", "train.device=cpu", "train.batch_size=16"],
    "resnet18": ["data=cifar10", "model=resnet18", "width=2", "optim=adam", "data.augment=true", "n_train=40",
                 "epochs=2", "train.eval_points=2", "progress=off", "train.device=cpu", "train.batch_size=16"],
    "transformer": ["experiment=fig9_11_transformer", "width=16", "n_train=60", "data.pool_size=200",
                    "data.test_size=50", "epochs=2", "train.eval_points=2", "progress=off"],
}
NUMBERS = ("epoch", "step", "train_error", "train_loss", "test_error", "test_loss", "n_params", "n_train",
           "label_noise_effective")


def family_numbers(root: Path) -> dict[str, dict]:
    from fake_data import write_all

    import ddescent

    write_all(root / "data")
    os.environ["DDESCENT_DATA"] = str(root / "data")
    out = {}
    for name, overrides in RUNS.items():
        df = ddescent.run(overrides, root / "results" / name).sort_values("epoch")
        extra = sorted(c for c in df.columns if c.startswith("quantized_") and df[c].dtype.kind == "f")
        out[name] = {"run_id": df["run_id"].iloc[0],
                     **{c: [float(v) for v in df[c]] for c in NUMBERS + tuple(extra)}}
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        print(json.dumps(family_numbers(Path(tmp)), indent=1, sort_keys=True))
