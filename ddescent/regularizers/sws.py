"""Soft weight sharing (Bishop & Bishop §9.4.1, eqs 9.21-9.31): a Gaussian-mixture prior over the weights.

    p(w)  = prod_i sum_j pi_j N(w_i | mu_j, sigma_j^2)                         (9.21)
    Omega = -sum_i ln sum_j pi_j N(w_i | mu_j, sigma_j^2)                       (9.22)

The mixture is learned with the weights, in the book's parameterisation: pi = softmax(eta) (9.30),
sigma_j^2 = exp(xi_j) (9.27), mu_j as is. The gradients are the closed forms 9.25, 9.26, 9.28 and 9.31,
written with the responsibilities gamma_j(w_i) of 9.24 and computed in the same pass as Omega (_MixtureNLL;
tests/test_sws.py compares them with autograd through the plain expression).

Everything is computed in log space, log pi_j + log N(w | mu_j, sigma_j^2) followed by logsumexp, so values
and gradients stay finite in float32 for |w| = 1e3, xi = +-30 and extreme eta.

Options (all off in the bare constructor `SoftWeightSharing(K)`):
- `pi_zero`: component 0 is pinned at mu = 0 with the fixed mixing weight pi_zero; the other K - 1 components
  share 1 - pi_zero through the softmax of their eta. `mu[0]` and `eta[0]` stay parameters (so every tensor
  has shape [K]) but receive zero gradient; sigma_0 is learned. Quantization sends its weights to exact zeros.
- `hyperprior`: a Gamma(shape, rate) prior on each precision 1/sigma_j^2 (`hyperprior_zero` for the pinned
  component, ignored unless one is pinned). `penalty()` then returns Omega (9.22) plus `hyperprior()`, its
  negative log density, so the whole negative log prior is scaled by lambda together. `mixture_nll()` is
  Omega alone.
- `lr`: learning rates of the mixture parameters; `param_groups(lr_weights)` gives the optimizer groups.
- `include_biases`: put biases under the prior too (`regularized(net)` selects the weights).
- `init_means`: "weights" spreads the free means over the weights' range when the penalty switches on.

At the end of a run (`finish`) the weights are snapped to their component means and evaluated again, with the
compression that buys (ddescent.regularizers.compression).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ddescent.checks import NONNEG_INT, POSITIVE, POSITIVE_INT, Rule, number, one_of
from ddescent.regularizers import compression
from ddescent.regularizers.base import Regularizer, RegularizerModule

RULES = {
    "regularizer.n_components": POSITIVE_INT,
    "regularizer.pi_zero": Rule(lambda v: v is None or number(lambda x: 0 < x < 1)(v), "null or a number in (0, 1)"),
    "regularizer.init_sigma": POSITIVE,
    "regularizer.init_means": one_of("weights", "range"),
    "regularizer.start_epoch": NONNEG_INT,
    "regularizer.ramp_epochs": NONNEG_INT,
    "regularizer.codebook_epochs": Rule(lambda v: v is None or NONNEG_INT.check(v), "null or a whole number >= 0"),
    "regularizer.codebook_lr": Rule(lambda v: v is None or POSITIVE.check(v), "null or a number > 0"),
}

LOG_2PI = math.log(2 * math.pi)
MIXTURE_PARAMS = ("mu", "xi", "eta")


def _flat(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.cat([w.reshape(-1) for w in weights])


class _MixtureNLL(torch.autograd.Function):
    """Omega = -sum_i ln sum_j exp(l_ij), l_ij = ln pi_j - 1/2 ln(2 pi sigma_j^2) - (w_i - mu_j)^2 / (2 sigma_j^2),
    with its gradients in closed form, in terms of the responsibilities gamma_ij = exp(l_ij - ln sum_j exp(l_ij)):

        dOmega/dw_i     =  sum_j gamma_ij (w_i - mu_j) / sigma_j^2                        (9.25)
        dOmega/dmu_j    = -sum_i gamma_ij (w_i - mu_j) / sigma_j^2                        (9.26)
        dOmega/dxi_j    =  1/2 sum_i gamma_ij (1 - (w_i - mu_j)^2 / sigma_j^2)            (9.28, sigma^2 = e^xi)
        dOmega/dln pi_j = -sum_i gamma_ij                                                  (9.31 via the softmax)

    The weights go through in chunks, so the [rows, K] intermediates stay in the CPU cache, and the
    gradients are formed in the same pass as Omega. Autograd's version of the same expression makes some twenty
    passes over [N, K] arrays in memory (~36 ms a step for 78k weights and K = 32 on one core, 20-30x the
    network's own step). Once differentiable: it is a penalty, never differentiated twice."""

    CHUNK_ELEMENTS = 1 << 16  # rows x K per chunk: three such float arrays fit a 2 MB L2 cache

    @staticmethod
    def forward(ctx, w, log_pi, mu, xi):
        inv_var = torch.exp(-xi)
        const = log_pi - 0.5 * (LOG_2PI + xi)
        need_grad = any(ctx.needs_input_grad)
        omega = w.new_zeros(())
        grad_w = torch.empty_like(w) if need_grad else None
        sums = w.new_zeros(3, len(mu))  # per component: sum gamma, sum gamma (w - mu), sum gamma (w - mu)^2
        rows = max(256, _MixtureNLL.CHUNK_ELEMENTS // len(mu))
        for start in range(0, len(w), rows):
            d = w[start:start + rows, None] - mu  # [rows, K]
            d2 = d * d
            joint = torch.addcmul(const, d2, inv_var, value=-0.5)
            top = joint.amax(1, keepdim=True)
            e = joint.sub_(top).exp_()
            total = e.sum(1, keepdim=True)
            omega -= (top + total.log()).sum()  # ln sum_j exp(l_ij), without overflow
            if need_grad:
                gamma = e.div_(total)
                sums[0] += gamma.sum(0)
                sums[2] += (d2.mul_(gamma)).sum(0)
                gd = d.mul_(gamma)
                sums[1] += gd.sum(0)
                torch.mv(gd, inv_var, out=grad_w[start:start + rows])
        if need_grad:
            ctx.save_for_backward(grad_w, sums, inv_var)
        return omega

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        grad_w, sums, inv_var = ctx.saved_tensors
        g_log_pi = -sums[0]
        g_mu = -inv_var * sums[1]
        g_xi = 0.5 * (sums[0] - inv_var * sums[2])
        return grad * grad_w, grad * g_log_pi, grad * g_mu, grad * g_xi


class SoftWeightSharing(RegularizerModule):
    """Gaussian-mixture prior over weights with learnable eta (mixing logits), mu (means), xi (log variances)."""

    def __init__(
        self,
        n_components: int,
        *,
        pi_zero: float | None = None,
        init_sigma: float = 0.25,
        init_range: tuple[float, float] = (-1.0, 1.0),
        hyperprior: tuple[float, float] | None = None,
        hyperprior_zero: tuple[float, float] | None = None,
        lr: float | Mapping[str, float] | None = None,
        include_biases: bool = False,
        init_means: str = "range",
        quantize: bool = False,
    ):
        super().__init__()
        K = int(n_components)
        if K < 1:
            raise ValueError(f"n_components={n_components}: need at least one component")
        if pi_zero is not None and not (K >= 2 and 0 < pi_zero < 1):
            raise ValueError(f"pi_zero={pi_zero}: a pinned zero component needs 0 < pi_zero < 1 and n_components >= 2")
        if not init_sigma > 0:
            raise ValueError(f"init_sigma={init_sigma}: must be > 0")
        self.n_components = K
        self.pi_zero = None if pi_zero is None else float(pi_zero)
        self.include_biases = bool(include_biases)
        self.init_means, self.quantize = init_means, bool(quantize)
        self.lr = self._check_lr(lr)

        self.eta = nn.Parameter(torch.zeros(K))
        self.mu = nn.Parameter(torch.zeros(K))
        self.xi = nn.Parameter(torch.full((K,), 2 * math.log(init_sigma)))
        free = torch.ones(K, dtype=torch.bool)
        if self.pinned:
            free[0] = False
        self.register_buffer("free", free, persistent=False)  # components whose mu and eta are learned
        self._spread_means(*init_range)

        self.hyperprior_params = None
        if hyperprior is not None:  # without it there is no hyperprior at all, and hyperprior_zero is ignored
            shape = torch.full((K,), float(hyperprior[0]))
            rate = torch.full((K,), float(hyperprior[1]))
            if self.pinned and hyperprior_zero is not None:
                shape[0], rate[0] = float(hyperprior_zero[0]), float(hyperprior_zero[1])
            if not (shape > 0).all() or not (rate > 0).all():
                raise ValueError(f"hyperprior {hyperprior} / {hyperprior_zero}: shape and rate must be > 0")
            self.register_buffer("gamma_shape", shape)
            self.register_buffer("gamma_rate", rate)
            self.hyperprior_params = (tuple(hyperprior), None if hyperprior_zero is None else tuple(hyperprior_zero))

    @staticmethod
    def _check_lr(lr) -> dict[str, float] | None:
        if lr is None:
            return None
        rates = {k: float(lr) for k in MIXTURE_PARAMS} if isinstance(lr, (int, float)) else dict(lr)
        unknown = set(rates) - set(MIXTURE_PARAMS)
        if unknown:
            raise ValueError(f"lr: unknown mixture parameters {sorted(unknown)}; use {', '.join(MIXTURE_PARAMS)}")
        if any(v is not None and not v > 0 for v in rates.values()):
            raise ValueError(f"lr={rates}: learning rates must be > 0")
        return rates

    @property
    def pinned(self) -> bool:
        return self.pi_zero is not None

    # ------------------------------------------------------------------ the mixture

    def log_pi(self) -> torch.Tensor:
        """ln pi_j, [K]: log_softmax(eta) (9.30), or with the pinned component ln pi_zero and the rest sharing
        ln(1 - pi_zero) through the softmax of their own eta."""
        if not self.pinned:
            return torch.log_softmax(self.eta, 0)
        rest = math.log1p(-self.pi_zero) + torch.log_softmax(self.eta[1:], 0)
        return torch.cat([rest.new_full((1,), math.log(self.pi_zero)), rest])

    def means(self) -> torch.Tensor:
        """mu_j, [K], with the pinned component's mean exactly 0 (and no gradient into mu[0])."""
        return torch.where(self.free, self.mu, torch.zeros_like(self.mu)) if self.pinned else self.mu

    def log_joint(self, w: torch.Tensor) -> torch.Tensor:
        """ln pi_j + ln N(w_i | mu_j, exp(xi_j)) for a flat w [N] -> [N, K].

        As ln pi_j - 1/2 ln(2 pi sigma_j^2) - z_ij^2 with z = (w - mu) / (sigma sqrt 2): the [K]-sized terms are
        formed first, so the [N, K] work is four elementwise ops (the penalty's cost is dominated by them)."""
        inv_scale = torch.exp(-0.5 * self.xi) * math.sqrt(0.5)  # 1 / (sigma sqrt 2)
        z = (w.unsqueeze(-1) - self.means()) * inv_scale  # subtract before scaling: no cancellation for w ~ mu
        return (self.log_pi() - 0.5 * (LOG_2PI + self.xi)) - z.square()

    def mixture_nll(self, weights: Iterable[torch.Tensor]) -> torch.Tensor:
        """Omega of eq 9.22, summed over every element of every tensor. Its gradients are the closed forms 9.25,
        9.26, 9.28 and 9.31, computed with Omega itself (see _MixtureNLL)."""
        return _MixtureNLL.apply(_flat(weights), self.log_pi(), self.means(), self.xi)

    def hyperprior(self) -> torch.Tensor:
        """-sum_j ln Gamma(1/sigma_j^2 | shape_j, rate_j) (0 without a hyperprior).

        With precision p_j = exp(-xi_j): -ln Gamma = lgamma(a) - a ln b + (a - 1) xi_j + b exp(-xi_j). It is the
        density of the precision itself (no Jacobian for xi), so its minimum over xi is the Gamma's mode (a - 1) / b:
        the variance cannot collapse below about b / (a - 1)."""
        if self.hyperprior_params is None:
            return self.xi.new_zeros(())
        a, b = self.gamma_shape, self.gamma_rate
        return (torch.lgamma(a) - a * torch.log(b) + (a - 1) * self.xi + b * torch.exp(-self.xi)).sum()

    def penalty(self, weights: Iterable[torch.Tensor]) -> torch.Tensor:
        """Omega (9.22) plus the hyperprior term when one is set: the negative log prior, not multiplied by lambda."""
        omega = self.mixture_nll(weights)
        return omega + self.hyperprior() if self.hyperprior_params is not None else omega

    @torch.no_grad()
    def responsibilities(self, w: torch.Tensor) -> torch.Tensor:
        """gamma_j(w_i) of eq 9.24, shape [*w.shape, K]; rows sum to 1."""
        return torch.softmax(self.log_joint(w.reshape(-1)), dim=-1).reshape(*w.shape, self.n_components)

    @torch.no_grad()
    def mixture(self) -> tuple[list[float], list[float], list[float]]:
        """(pi, mu, sigma) of every component as float lists, e.g. for the sws_pi/sws_mu/sws_sigma columns."""
        return (self.log_pi().exp().tolist(), self.means().tolist(), torch.exp(0.5 * self.xi).tolist())

    # ------------------------------------------------------------------ setting up

    @torch.no_grad()
    def _spread_means(self, lo: float, hi: float) -> None:
        n_free = int(self.free.sum())
        self.mu[self.free] = torch.linspace(float(lo), float(hi), n_free) if n_free > 1 else 0.5 * (lo + hi)
        self.mu[~self.free] = 0.0

    @torch.no_grad()
    def init_from(self, weights: Iterable[torch.Tensor]) -> SoftWeightSharing:
        """Spread the free components' means evenly over [min w, max w] of the given weights (pinned mean stays 0)."""
        flat = _flat(weights)
        self._spread_means(flat.min().item(), flat.max().item())
        return self

    def switch_on(self, weights: Iterable[torch.Tensor]) -> None:
        """When the prior starts (after pretraining), its means are spread over the weights as they are then."""
        if self.init_means == "weights":
            self.init_from(weights)

    def columns(self) -> dict:
        """The learned mixture at every evaluation: sws_pi, sws_mu, sws_sigma (lists of K)."""
        return dict(zip(("sws_pi", "sws_mu", "sws_sigma"), self.mixture()))

    def param_groups(self, lr_weights: float) -> list[dict]:
        """Optimizer groups for mu, xi, eta: their own learning rates (`lr`, default lr_weights) and no weight decay
        (decaying a mean or a log variance towards 0 means nothing)."""
        rates = self.lr or {}
        return [{"params": [getattr(self, name)], "lr": rates.get(name) or lr_weights, "weight_decay": 0.0}
                for name in MIXTURE_PARAMS]

    # ------------------------------------------------------------------ compression

    @torch.no_grad()
    def assign(self, weights: Iterable[torch.Tensor]) -> list[torch.Tensor]:
        """Per weight tensor, the flat index of each weight's most responsible component, argmax_j gamma_j(w)
        (eq 9.24; the argmax of the joint is the argmax of the responsibility)."""
        dtype = self.mu.dtype
        return [self.log_joint(w.detach().reshape(-1).to(dtype)).argmax(dim=-1) for w in weights]

    @torch.no_grad()
    def quantize_(self, weights: Iterable[torch.Tensor], assignments: list[torch.Tensor] | None = None) -> dict:
        """Snap every weight, in place, to the mean of its most responsible component (argmax_j gamma_j(w), eq 9.24;
        the pinned component gives exact zeros). Returns n_weights, n_distinct (distinct values after snapping,
        <= K) and sparsity (fraction exactly 0); what the snapped net costs to store is compression.storage."""
        weights = list(weights)
        means = self.means()
        for w, idx in zip(weights, assignments if assignments is not None else self.assign(weights)):
            w.copy_(means[idx].reshape(w.shape))
        flat = _flat([w.detach() for w in weights])
        n, nnz = flat.numel(), int(torch.count_nonzero(flat))
        return {"n_weights": n, "n_distinct": int(torch.unique(flat).numel()), "sparsity": 1.0 - nnz / n if n else 0.0}

    def extra_repr(self) -> str:
        return (f"n_components={self.n_components}, pi_zero={self.pi_zero}, hyperprior={self.hyperprior_params}, "
                f"lr={self.lr}, include_biases={self.include_biases}")


def _pair(node, what: str) -> tuple[float, float] | None:
    if node is None:
        return None
    if isinstance(node, Mapping) or hasattr(node, "keys"):
        return float(node["shape"]), float(node["rate"])
    raise ValueError(f"regularizer.{what}: expected {{shape: ..., rate: ...}} or null")


def build(cfg) -> SoftWeightSharing:
    """The prior of conf/regularizer/sws.yaml."""
    lr = cfg.get("lr")
    if lr is not None and not isinstance(lr, (int, float)):
        lr = {k: v for k, v in dict(lr).items() if v is not None}
    return SoftWeightSharing(
        int(cfg.n_components),
        pi_zero=cfg.get("pi_zero"),
        init_sigma=float(cfg.get("init_sigma", 0.25)),
        init_range=tuple(cfg.get("init_range", (-1.0, 1.0))),
        hyperprior=_pair(cfg.get("hyperprior"), "hyperprior"),
        hyperprior_zero=_pair(cfg.get("hyperprior_zero"), "hyperprior_zero"),
        lr=lr,
        include_biases=bool(cfg.get("include_biases", False)),
        init_means=cfg.get("init_means") or "range",
        quantize=bool(cfg.get("quantize", False)),
    )


def finish(prior: SoftWeightSharing, net: nn.Module, data, cfg) -> dict:
    """Quantize the trained net (and, with codebook_epochs, fine-tune its codebook); see compression.report."""
    return compression.report(prior, net, data, cfg) if prior.quantize else {}


# Not packable: the mixture is learned per run, and the quantization at the end reads one run's net.
REGULARIZER = Regularizer("sws", build=build, finish=finish, packable=False, rules=RULES)
