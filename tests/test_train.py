import math


from ddescent.config import compose
from ddescent.train import eval_epochs


def test_eval_epochs_are_log_spaced_with_ends():
    e = eval_epochs(500, 24)
    assert e[0] == 0 and e[-1] == 500 and e == sorted(set(e))
    assert 1 in e and 2 in e and len(e) <= 26
    ratios = [b / a for a, b in zip(e[1:], e[2:]) if a >= 10]
    assert max(ratios) < 1.6  # evenly spread on a log axis


def test_single_epoch_has_start_and_end():
    assert eval_epochs(1, 24) == [0, 1]


def test_learning_lowers_train_loss(data_cache, tmp_path):
    from ddescent.runner import execute
    from ddescent import store
    from ddescent.config import run_config

    cfg = compose(["data.num_samples=1000", "n_train=200", "epochs=30", "width=64", "optim=adam", "optim.lr=0.01",
                   f"results={tmp_path}", "label_noise=0"])
    config = run_config(cfg)
    assert execute([config]) == ["complete"]
    df = store.load(tmp_path)
    first, last = df.iloc[0], df.iloc[-1]
    assert first.epoch == 0 and last.epoch == 30
    assert last.train_loss < 0.5 * first.train_loss
    assert last.test_error < first.test_error - 0.05
    assert math.isclose(first.train_error, first.train_error)  # recorded at initialisation too
