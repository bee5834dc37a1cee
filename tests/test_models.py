import pytest
import torch
from omegaconf import OmegaConf

from ddescent.models import build, count_params, mlp
from ddescent.metrics import per_model_loss
from ddescent.optim import make_optimizer


def _mlp(width, seed=0, depth=2):
    cfg = OmegaConf.create({"name": "mlp", "width": width, "depth": depth})
    return build(cfg, (40,), 10, torch.Generator().manual_seed(seed)), cfg


@pytest.mark.parametrize("h", [1, 2, 16, 47, 300])
def test_mlp_params_match_formula(h):
    model, cfg = _mlp(h)
    assert count_params(model) == h * h + 52 * h + 10 == mlp.n_params(cfg, (40,), 10)


def test_mlp_params_other_depths():
    for depth in (1, 3):
        model, cfg = _mlp(20, depth=depth)
        assert count_params(model) == mlp.n_params(cfg, (40,), 10)


def test_init_depends_on_seed_only():
    a, _ = _mlp(8, seed=3)
    torch.manual_seed(999)  # global state must not matter
    b, _ = _mlp(8, seed=3)
    c, _ = _mlp(8, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, c[1].weight)


def test_packed_mlp_trains_exactly_like_separate_models():
    """Padding stays zero and each member follows its own trajectory (up to float summation order)."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    widths = [3, 8, 13]
    alone = [_mlp(w, seed=i)[0] for i, w in enumerate(widths)]
    packed = mlp.pack([_mlp(w, seed=i)[0] for i, w in enumerate(widths)])
    cfg = OmegaConf.create({"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3})
    opt_packed = make_optimizer(packed.parameters(), cfg)
    opts = [make_optimizer(m.parameters(), cfg) for m in alone]
    for _ in range(20):
        loss = per_model_loss(packed(x.expand(3, 64, 40)), y.expand(3, 64)).sum()
        opt_packed.zero_grad()
        loss.backward()
        opt_packed.step()
        for m, o in zip(alone, opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for g, (w, m) in enumerate(zip(widths, alone)):
        out = packed(x.expand(3, 64, 40))[g]
        torch.testing.assert_close(out, m(x), rtol=1e-4, atol=1e-5)
        assert torch.all(packed.weights[0][g, :, w:] == 0)  # padded units never woke up
    back = packed.unpack(1, _mlp(8)[0])
    torch.testing.assert_close(back(x), alone[1](x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("depth,smoothing", [(1, 0.0), (2, 0.0), (3, 0.1)])
def test_packed_mlp_backward_by_hand_equals_autograd(depth, smoothing):
    """The hand-written backward (the fast path of the training loop) gives autograd's gradients, padding
    included, on a batch that is a strided slice as the loop passes it."""
    widths = [3, 8, 13]
    nets = [mlp.pack([build(OmegaConf.create({"name": "mlp", "width": w, "depth": depth}), (40,), 10,
                            torch.Generator().manual_seed(i)) for i, w in enumerate(widths)]) for _ in range(2)]
    g = torch.Generator().manual_seed(1)
    block_x, block_y = torch.randn(3, 96, 40, generator=g), torch.randint(0, 10, (3, 96), generator=g)
    x, y = block_x[:, 32:64], block_y[:, 32:64]
    per_model_loss(nets[0](x), y, smoothing).sum().backward()
    nets[1].backward_by_hand(x, y, smoothing)
    for auto, hand in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(hand.grad, auto.grad, rtol=1e-5, atol=1e-7)
    assert torch.all(nets[1].weights[0].grad[0, :, 3:] == 0)  # padded units get no gradient


def test_mlp_ratios_give_lenet_300_100():
    cfg = OmegaConf.create({"name": "mlp", "width": 300, "depth": 2, "ratios": [1, 0.3333]})
    model = build(cfg, (1, 28, 28), 10, torch.Generator().manual_seed(0))
    assert [m.out_features for m in model if isinstance(m, torch.nn.Linear)] == [300, 100, 10]
    assert count_params(model) == mlp.n_params(cfg, (1, 28, 28), 10) == 266_610
