"""Soft weight sharing (Bishop eqs 9.21-9.31) and L2: values, gradients, stability, quantization."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Categorical, Gamma, MixtureSameFamily, Normal

from ddescent.regularizers import l2
from ddescent.regularizers.sws import SoftWeightSharing, _MixtureNLL, build

CONF = Path(__file__).resolve().parents[1] / "conf" / "regularizer"


def mixture(K=4, seed=0, dtype=torch.float64, **options) -> SoftWeightSharing:
    """A mixture with random, distinct parameters (not the symmetric defaults)."""
    gen = torch.Generator().manual_seed(seed)
    sws = SoftWeightSharing(K, **options).to(dtype)
    with torch.no_grad():
        sws.eta.copy_(torch.randn(K, generator=gen, dtype=dtype))
        sws.mu.copy_(torch.randn(K, generator=gen, dtype=dtype) * sws.free)
        sws.xi.copy_(torch.randn(K, generator=gen, dtype=dtype) * 0.5 - 1.0)
    return sws


def weights(seed=1, dtype=torch.float64) -> list[torch.Tensor]:
    """Two tensors of different shapes, as a model's weights would be."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(7, 5, generator=gen, dtype=dtype).requires_grad_(),
            (torch.randn(11, generator=gen, dtype=dtype) * 2).requires_grad_()]


def reference_dist(sws: SoftWeightSharing) -> MixtureSameFamily:
    """An independent mixture density from torch.distributions, with the module's pi, mu, sigma."""
    pi = sws.log_pi().exp().detach()
    return MixtureSameFamily(Categorical(probs=pi), Normal(sws.means().detach(), torch.exp(0.5 * sws.xi).detach()))


def naive_gamma(sws: SoftWeightSharing, w: torch.Tensor) -> torch.Tensor:
    """Responsibilities 9.24 computed directly from densities (fine for moderate values), [N, K]."""
    pi = sws.log_pi().exp().detach()
    dens = pi * Normal(sws.means().detach(), torch.exp(0.5 * sws.xi).detach()).log_prob(w.reshape(-1, 1)).exp()
    return dens / dens.sum(1, keepdim=True)


def grads(sws, ws):
    for t in [*ws, *sws.parameters()]:
        t.grad = None
    sws.penalty(ws).backward()
    return torch.cat([w.grad.reshape(-1) for w in ws]), sws.mu.grad, sws.xi.grad, sws.eta.grad


# ----------------------------------------------------------------------------- Omega and its gradients


@pytest.mark.parametrize("pi_zero", [None, 0.9])
def test_omega_matches_torch_distributions(pi_zero):
    sws, ws = mixture(K=5, pi_zero=pi_zero), weights()
    flat = torch.cat([w.detach().reshape(-1) for w in ws])
    expected = -reference_dist(sws).log_prob(flat).sum()
    assert torch.allclose(sws.penalty(ws), expected, rtol=1e-12, atol=0)
    assert sws.penalty(ws).dtype == torch.float64


def test_gradients_match_closed_forms():
    sws, ws = mixture(K=4), weights()
    gw, gmu, gxi, geta = grads(sws, ws)
    w = torch.cat([t.detach().reshape(-1) for t in ws]).unsqueeze(1)  # [N, 1]
    gamma = naive_gamma(sws, w)  # [N, K]
    mu, var, pi = sws.mu.detach(), sws.xi.detach().exp(), sws.log_pi().exp().detach()
    assert torch.allclose(gw, (gamma * (w - mu) / var).sum(1), rtol=1e-10)  # 9.25
    assert torch.allclose(gmu, (gamma * (mu - w) / var).sum(0), rtol=1e-10)  # 9.26
    assert torch.allclose(gxi, 0.5 * (gamma * (1 - (w - mu) ** 2 / var)).sum(0), rtol=1e-10)  # 9.28
    assert torch.allclose(geta, (pi - gamma).sum(0), rtol=1e-10, atol=1e-12)  # 9.31
    assert gmu.abs().min() > 1e-3 and gxi.abs().min() > 1e-3  # a non-trivial point, not a stationary one


@pytest.mark.parametrize("pi_zero", [None, 0.7])
def test_fused_omega_equals_autograd_over_several_chunks(pi_zero):
    """mixture_nll computes Omega and its gradients chunk by chunk; 3000 weights at K = 64 take three chunks, the
    last one partial. Values and every gradient equal autograd through the plain expression."""
    sws = mixture(K=64, pi_zero=pi_zero)
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(3000, generator=gen, dtype=torch.float64)
    def plain(ws):  # Omega as the plain expression, differentiated by autograd
        return -torch.logsumexp(sws.log_joint(torch.cat([w.reshape(-1) for w in ws])), dim=-1).sum()

    results = []
    for f in (sws.mixture_nll, plain):
        ws = [w[:1000].reshape(10, 100).clone().requires_grad_(), w[1000:].clone().requires_grad_()]
        for p in sws.parameters():
            p.grad = None
        value = f(ws)
        value.backward()
        results.append([value.detach(), *(t.grad.reshape(-1) for t in ws), sws.mu.grad, sws.xi.grad, sws.eta.grad])
        with torch.no_grad():
            assert torch.equal(f(ws), value.detach())  # the same value without gradients
    for fused, reference in zip(*results):
        assert torch.allclose(fused, reference, rtol=1e-10, atol=1e-10)
    small = mixture(K=3, pi_zero=pi_zero)
    assert torch.autograd.gradcheck(lambda w, log_pi, mu, xi: _MixtureNLL.apply(w, log_pi, mu, xi),
                                    (torch.randn(7, dtype=torch.float64, requires_grad=True),
                                     small.log_pi().detach().requires_grad_(), small.means().detach().requires_grad_(),
                                     small.xi.detach().requires_grad_()))


def test_single_zero_mean_component_is_l2():
    sws = SoftWeightSharing(1).double()
    with torch.no_grad():
        sws.xi.fill_(math.log(0.3**2))
    ws = weights()
    gw, *_ = grads(sws, ws)
    flat = torch.cat([w.detach().reshape(-1) for w in ws])
    assert torch.allclose(gw, flat / 0.3**2, rtol=1e-12)  # the L2 gradient w / sigma^2
    n = flat.numel()
    expected = (flat**2).sum() / (2 * 0.3**2) + 0.5 * n * math.log(2 * math.pi * 0.3**2)
    assert torch.allclose(sws.penalty(ws), expected, rtol=1e-12)


def test_gradients_vanish_at_an_em_fixed_point():
    gen = torch.Generator().manual_seed(3)
    centres, spreads, counts = torch.tensor([-1.0, 0.0, 1.5]), torch.tensor([0.1, 0.2, 0.15]), [60, 150, 90]
    w = torch.cat([c + s * torch.randn(n, generator=gen) for c, s, n in zip(centres, spreads, counts)]).double()
    sws = SoftWeightSharing(3).double()
    with torch.no_grad():
        sws.mu.copy_(torch.tensor([-0.5, 0.2, 1.0]))
        sws.xi.fill_(math.log(0.5**2))
    _, gmu, gxi, geta = grads(sws, [w.clone().requires_grad_()])
    assert min(gmu.abs().max(), gxi.abs().max(), geta.abs().max()) > 1.0  # far from stationary before EM
    with torch.no_grad():
        for _ in range(500):  # EM: pi, mu, sigma^2 from the responsibilities until nothing moves
            gamma = naive_gamma(sws, w)
            nk = gamma.sum(0)
            mu = (gamma * w[:, None]).sum(0) / nk
            sws.eta.copy_((nk / len(w)).log())
            sws.xi.copy_(((gamma * (w[:, None] - mu) ** 2).sum(0) / nk).log())
            sws.mu.copy_(mu)
    assert torch.allclose(sws.mu, centres.double(), atol=0.05)  # EM found the clusters
    _, gmu, gxi, geta = grads(sws, [w.clone().requires_grad_()])
    for g in (gmu, gxi, geta):
        assert g.abs().max() < 1e-8


def test_permuting_components_leaves_omega_unchanged():
    sws, ws = mixture(K=6), weights()
    before = sws.penalty(ws)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        for p in (sws.eta, sws.mu, sws.xi):
            p.copy_(p[perm])
    assert torch.allclose(sws.penalty(ws), before, rtol=1e-13)


PRESET = {"pi_zero": 0.999, "hyperprior": (250.0, 0.1), "hyperprior_zero": (5000.0, 2.0)}


@pytest.mark.parametrize("options", [{}, PRESET])
def test_finite_in_float32_at_the_extremes(options):
    sws = SoftWeightSharing(4, **options)
    w = torch.tensor([1e3, -1e3, 0.0, 1e-6, 3.0, -250.0], requires_grad=True)
    for xi in ([30.0, -30.0, 0.0, -30.0], [-30.0] * 4, [30.0] * 4):
        for eta in ([1e4, -1e4, 0.0, 50.0], [-1e4] * 4, [0.0, 0.0, 1e4, -1e4]):
            with torch.no_grad():
                sws.xi.copy_(torch.tensor(xi))
                sws.eta.copy_(torch.tensor(eta))
            for t in (w, *sws.parameters()):
                t.grad = None
            value = sws.penalty([w])
            value.backward()
            assert torch.isfinite(value), (xi, eta)
            for t in (w, *sws.parameters()):
                assert torch.isfinite(t.grad).all(), (xi, eta)
            assert torch.isfinite(sws.responsibilities(w)).all()


def test_float32_agrees_with_float64():
    sws64, ws64 = mixture(K=5), weights()
    sws32 = mixture(K=5, dtype=torch.float32)
    ws32 = [w.detach().float().requires_grad_() for w in ws64]
    assert torch.allclose(sws32.penalty(ws32).double(), sws64.penalty(ws64), rtol=1e-5)


# ----------------------------------------------------------------------------- options


def test_pinned_zero_component():
    sws, ws = mixture(K=4, pi_zero=0.9), weights()
    pi, mu, sigma = sws.mixture()
    assert pi[0] == pytest.approx(0.9) and sum(pi) == pytest.approx(1.0) and mu[0] == 0.0
    with torch.no_grad():  # a nonzero mu[0] is ignored: the pinned mean is 0 whatever the tensor holds
        sws.mu[0] = 5.0
    assert sws.mixture()[1][0] == 0.0
    _, gmu, gxi, geta = grads(sws, ws)
    assert gmu[0] == 0 and geta[0] == 0 and gxi[0] != 0  # mean and weight fixed, variance learned
    # the free logits share 1 - pi_zero: d Omega / d eta_k = sum_i (s_k G_i - gamma_ik), G_i = sum_{j>=1} gamma_ij
    gamma = naive_gamma(sws, torch.cat([w.detach().reshape(-1) for w in ws]))
    s = torch.softmax(sws.eta.detach()[1:], 0)
    expected = (s * gamma[:, 1:].sum(1, keepdim=True) - gamma[:, 1:]).sum(0)
    assert torch.allclose(geta[1:], expected, rtol=1e-10)


def test_hyperprior_is_the_gamma_density_of_the_precisions():
    sws, ws = mixture(K=3, pi_zero=0.99, hyperprior=(250.0, 0.1), hyperprior_zero=(5000.0, 2.0)), weights()
    precision = torch.exp(-sws.xi.detach())
    shape, rate = torch.tensor([5000.0, 250.0, 250.0]).double(), torch.tensor([2.0, 0.1, 0.1]).double()
    expected = -Gamma(shape, rate).log_prob(precision).sum()
    assert torch.allclose(sws.hyperprior(), expected, rtol=1e-12)
    assert torch.allclose(sws.penalty(ws), sws.mixture_nll(ws) + expected, rtol=1e-12)
    with torch.no_grad():  # its minimum in xi sits at the Gamma's mode (a - 1) / b, i.e. sigma ~ 0.02
        sws.xi.copy_(-torch.log((shape - 1) / rate))
    sws.xi.grad = None
    sws.hyperprior().backward()
    assert sws.xi.grad.abs().max() < 1e-9
    assert SoftWeightSharing(3).hyperprior() == 0


def test_init_from_spreads_means_over_the_weights_range():
    w = torch.tensor([[-0.4, 0.1], [0.2, 0.8]])
    assert SoftWeightSharing(5).init_from([w]).mixture()[1] == pytest.approx([-0.4, -0.1, 0.2, 0.5, 0.8])
    pinned = SoftWeightSharing(4, pi_zero=0.99).init_from([w, torch.tensor([-0.6])])
    assert pinned.mixture()[1] == pytest.approx([0.0, -0.6, 0.1, 0.8])


def test_param_groups_give_the_mixture_its_own_learning_rates():
    sws = SoftWeightSharing(4, lr={"mu": 1e-4, "xi": 3e-3})
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam([{"params": sws.regularized(net)}, *sws.param_groups(lr_weights=5e-4)], lr=5e-4)
    lrs = {id(g["params"][0]): g["lr"] for g in opt.param_groups}
    assert lrs[id(sws.mu)] == 1e-4 and lrs[id(sws.xi)] == 3e-3 and lrs[id(sws.eta)] == 5e-4
    assert lrs[id(net.weight)] == 5e-4 and all(g["weight_decay"] == 0 for g in opt.param_groups)
    assert sws.regularized(net) == [net.weight]
    assert SoftWeightSharing(4, include_biases=True).regularized(net) == [net.weight, net.bias]


def test_responsibilities_sum_to_one_and_match_9_24():
    sws, ws = mixture(K=4), weights()
    gamma = sws.responsibilities(ws[0])
    assert gamma.shape == (7, 5, 4)
    assert torch.allclose(gamma.sum(-1), torch.ones(7, 5, dtype=torch.float64))
    assert torch.allclose(gamma.reshape(-1, 4), naive_gamma(sws, ws[0].detach()), rtol=1e-10)


# ----------------------------------------------------------------------------- quantization


def test_quantize_snaps_to_the_most_responsible_means():
    sws = mixture(K=5, pi_zero=0.8)
    ws = [w.detach() for w in weights()]
    winner = [sws.responsibilities(w).argmax(-1) for w in ws]
    stats = sws.quantize_(ws)
    means = sws.means().detach()
    for w, j in zip(ws, winner):
        assert torch.equal(w, means[j])  # each weight is its most responsible component's mean
    flat = torch.cat([w.reshape(-1) for w in ws])
    assert stats["n_distinct"] == len(torch.unique(flat)) <= 5
    zeros = int((flat == 0).sum())
    assert zeros > 0 and torch.equal(flat == 0, torch.cat([j.reshape(-1) == 0 for j in winner]))
    assert stats["sparsity"] == pytest.approx(zeros / flat.numel())


def test_quantize_reports_what_it_snapped():
    sws = SoftWeightSharing(4, pi_zero=0.99)
    with torch.no_grad():
        sws.mu.copy_(torch.tensor([0.0, -1.0, 1.0, 2.0]))
        sws.xi.fill_(math.log(0.1**2))
    w = torch.nn.Parameter(torch.tensor([0.01, -0.02, 0.0, 0.03, -0.99, 1.02, 0.0, -0.01] * 25))  # 150 to zero
    stats = sws.quantize_([w])  # in place, on a parameter as a model holds it
    assert stats == {"n_weights": 200, "n_distinct": 3, "sparsity": 0.75}
    assert set(w.tolist()) == {0.0, -1.0, 1.0}


def test_storage_counts_positions_biases_and_the_codebook_decodably():
    """Han et al.'s format by hand: 8 weights, nonzeros at 0, 1 and 7 (gaps of 0, 0 and 5 zeros), K = 4 (2-bit
    indices). 1-bit relative positions bridge the gap of 5 with two filler entries (each skipping one zero and
    taking a position itself): 5 entries x (1 + 2) bits = 15 bits, better than 2-bit (4 entries x 4 = 16) and the
    mask (8 + 3 x 2 = 14 is better still). Plus 8 bits of header, a 32-bit codebook of 4 and 3 biases at 32 bits."""
    from ddescent.regularizers.compression import position_bits, storage

    positions = torch.tensor([0, 1, 7])
    assert position_bits(8, positions, 2) == (14 + 8, "mask")
    assert position_bits(64, torch.tensor([0, 1, 7]), 2) == (5 * 3 + 8, "relative 1-bit")
    w = torch.zeros(8)
    w[[0, 1, 7]] = torch.tensor([1.0, -1.0, 2.0])
    report = storage([w], n_other=3, n_components=4)
    assert report["compression"] == pytest.approx(32 * 11 / (14 + 8 + 32 * 4 + 32 * 3))
    assert report["compression_formats"] == ["mask"]
    assert report["compression_index_only"] == pytest.approx(32 * 8 / (3 * 2 + 32 * 4))  # the old figure
    # a long run of zeros: relative indices beat the mask, and every weight counts
    big = torch.zeros(10_000)
    big[::100] = 1.0
    report = storage([big], n_other=0, n_components=2)
    bits = min(100 * (p + 1) + 100 * (99 // 2 ** p) * (p + 1) for p in range(1, 17)) + 8 + 64
    assert report["compression"] == pytest.approx(32 * 10_000 / bits) and report["compression_formats"][0].startswith("relative")


def test_lambda_is_ullrichs_tau_per_step():
    """Ullrich's tutorial adds (tau / N) x [summed -log prior + Gamma terms] (empirical_priors.py) to the mean
    cross-entropy; ddescent adds (lambda / n_train) x [Omega + hyperprior]: the same term when lambda = tau."""
    from ddescent.regularizers import Penalty

    tau, N = 0.003, 60_000
    sws = SoftWeightSharing(4, pi_zero=0.99, init_sigma=0.25, hyperprior=(250.0, 0.1),
                            hyperprior_zero=(5000.0, 2.0)).double()
    ws = weights()
    cfg = OmegaConf.create({"strength": tau, "start_epoch": 0, "ramp_epochs": 0})
    ours = Penalty(sws, ws, cfg, N)(1)
    # their layer, written out: gammas = log precision = -xi; pi from their softmax with pi_0 fixed
    flat = torch.cat([w.detach().reshape(-1) for w in ws])
    pi, mu, prec = sws.log_pi().exp(), sws.means(), torch.exp(-sws.xi)
    log_like = torch.logsumexp(torch.log(pi * torch.sqrt(prec / (2 * math.pi))) - (flat[:, None] - mu) ** 2 / 2 * prec, 1)
    gamma = -sws.xi
    neglog = -log_like.sum() + ((1 - 5000.0) * gamma[0] + 2.0 * prec[0]) + ((1 - 250.0) * gamma[1:] + 0.1 * prec[1:]).sum()
    # their Gamma terms drop the normalising constants, which have no gradient: compare gradients and differences
    const = sws.hyperprior() - (((5000.0 - 1) * sws.xi[0] + 2.0 * prec[0]) + ((250.0 - 1) * sws.xi[1:] + 0.1 * prec[1:]).sum())
    assert ours.item() == pytest.approx((tau / N) * (neglog + const).item(), rel=1e-9)


# ----------------------------------------------------------------------------- L2 and configs


def test_l2_penalty_is_half_the_sum_of_squares():
    reg = l2.build(OmegaConf.create({"name": "l2"}))
    ws = weights()
    value = reg.penalty(ws)
    assert torch.allclose(value, 0.5 * sum((w.detach() ** 2).sum() for w in ws), rtol=1e-14)
    value.backward()
    assert all(torch.equal(w.grad, w.detach()) for w in ws)  # d/dw 1/2 w^2 = w


def test_presets_build():
    cfg = OmegaConf.load(CONF / "sws.yaml")
    sws = build(cfg)
    pi, mu, sigma = sws.mixture()
    assert len(pi) == cfg.n_components and pi[0] == pytest.approx(cfg.pi_zero) and mu[0] == 0
    assert sigma == pytest.approx([cfg.init_sigma] * cfg.n_components)
    assert sws.hyperprior_params == ((250.0, 0.1), (5000.0, 2.0)) and sws.lr["mu"] == 1e-4
    assert isinstance(l2.build(OmegaConf.load(CONF / "l2.yaml")), l2.L2)
    bare = build(OmegaConf.create({"name": "sws", "n_components": 3, "pi_zero": None, "hyperprior": None,
                                   "hyperprior_zero": {"shape": 5000, "rate": 2}}))  # switched off with hyperprior
    assert bare.pi_zero is None and bare.hyperprior_params is None and bare.lr is None


def test_codebook_tuning_keeps_the_net_quantized_and_lowers_its_training_loss():
    from torch import nn

    from ddescent.data import Data
    from ddescent.metrics import evaluate
    from ddescent.models.mlp import pack
    from ddescent.regularizers.compression import tune_codebook

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()  # 3 classes
    data = Data(x, y, x[:50], y[:50], 3, 0.0)
    torch.manual_seed(0)
    net = pack([nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):  # a trained net, so that snapping it costs something
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[None])[0], y).backward()
        opt.step()
    trained_loss = evaluate(net, x, y, 1)[1].item()
    sws = SoftWeightSharing(4, pi_zero=0.5)
    sws.init_from(list(net.weights))
    weights = sws.regularized(net)
    assignments = sws.assign(weights)
    sws.quantize_(weights, assignments)
    zeros = [w.detach() == 0 for w in weights]
    snapped_loss = evaluate(net, x, y, 1)[1].item()

    adam = OmegaConf.create({"name": "adam", "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0})
    tune_codebook(net, weights, assignments, sws.means(), ~sws.free, data, epochs=30, batch_size=50, lr=1e-2,
                  optim_cfg=adam, seed=0)
    values = torch.unique(torch.cat([w.detach().reshape(-1) for w in weights]))
    assert len(values) <= 4  # still at most K shared values
    for w, idx, z in zip(weights, assignments, zeros):
        assert torch.equal(w.detach() == 0, z)  # the pinned zero stays exactly zero, nothing else becomes zero
        flat = w.detach().reshape(-1)
        for j in idx.unique():  # every weight of a component holds that component's one tuned value
            assert len(flat[idx == j].unique()) == 1
    assert snapped_loss > trained_loss + 0.1
    assert evaluate(net, x, y, 1)[1].item() < snapped_loss - 0.5 * (snapped_loss - trained_loss)
