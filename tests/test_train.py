from conftest import plan
from ddescent.runner import execute
from ddescent.history import eval_epochs


def test_eval_epochs_are_log_spaced_with_ends():
    e = eval_epochs(500, 24)
    assert e[0] == 0 and e[-1] == 500 and e == sorted(set(e))
    assert 1 in e and 2 in e and len(e) <= 26
    ratios = [b / a for a, b in zip(e[1:], e[2:]) if a >= 10]
    assert max(ratios) < 1.6  # evenly spread on a log axis


def test_single_epoch_has_start_and_end():
    assert eval_epochs(1, 24) == [0, 1]


def test_learning_lowers_train_loss(data_cache, tmp_path):
    from ddescent import store

    specs = plan(["data.num_samples=1000", "n_train=200", "epochs=30", "width=64", "optim=adam", "optim.lr=0.01",
                  "label_noise=0", "seed=0"], tmp_path)
    assert [o.status for o in execute(specs)] == ["complete"]
    df = store.load(tmp_path).sort_values("epoch")
    first, last = df.iloc[0], df.iloc[-1]
    assert first.epoch == 0 and last.epoch == 30
    assert 0.8 < first.train_error <= 1 and 0.8 < first.test_error <= 1  # at initialisation: chance level, 10 classes
    assert last.train_loss < 0.5 * first.train_loss
    assert last.test_error < first.test_error - 0.05


def test_inverse_sqrt_schedule_warms_up_then_decays():
    import torch
    from omegaconf import OmegaConf

    from ddescent.optim import make_schedule

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = make_schedule(opt, OmegaConf.create({"schedule": "inverse_sqrt", "warmup_steps": 4}))
    rates = []
    for _ in range(16):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]  # linear warm-up to the base rate
    assert rates[15] == 0.5  # then sqrt(warmup / step): step 16 -> sqrt(4/16)
    assert make_schedule(opt, OmegaConf.create({"schedule": "constant"})) is None


def test_label_smoothing_enters_the_objective_only(data_cache, tmp_path):
    import torch

    from ddescent import store
    from ddescent.metrics import per_model_loss

    logits, y = torch.tensor([[[10.0, 0.0, 0.0]]]), torch.tensor([[0]])
    assert per_model_loss(logits, y, 0.1) > per_model_loss(logits, y)  # smoothing penalises confidence
    specs = plan(["data.num_samples=1000", "n_train=200", "epochs=99", "train.steps=7", "train.label_smoothing=0.1",
                  "optim.warmup_steps=3", "width=8", "seed=0"], tmp_path)
    assert [o.status for o in execute(specs)] == ["complete"]
    df = store.load(tmp_path)
    assert df.epoch.max() == 4  # 7 steps of batch 100 on 200 samples: 4 whole epochs, not 99
    assert (df.train_loss > 0).all() and df.train_loss.iloc[-1] < df.train_loss.iloc[0]


def test_lean_sgd_update_matches_torch_step():
    """The loop's lean SGD update leaves the same weights and optimizer state as SGD.step (two groups, weight
    decay, Nesterov, a changing learning rate), so checkpoints stay interchangeable."""
    import torch

    from ddescent.optim import lean_update

    def run(lean: bool):
        g = torch.Generator().manual_seed(0)
        a, b = torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))
        opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9,
                              nesterov=True, weight_decay=1e-2, fused=True)
        zero_grad, step = lean_update(opt) if lean else (opt.zero_grad, opt.step)
        for i in range(5):
            opt.param_groups[0]["lr"] = 0.1 / (i + 1)
            zero_grad()
            ((a.sin().sum() + b.square().sum()) ** 2).backward()
            step()
        return [a, b], opt.state_dict()

    (params_lean, state_lean), (params_ref, state_ref) = run(True), run(False)
    for p, q in zip(params_lean, params_ref):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    for key in state_ref["state"]:
        torch.testing.assert_close(state_lean["state"][key]["momentum_buffer"],
                                   state_ref["state"][key]["momentum_buffer"], rtol=0, atol=0)
