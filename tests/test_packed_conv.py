"""Packed convolutional families (ddescent.models.packed_conv): a pack computes and learns what each member
computes and learns alone, members do not mix, and the zero padding stays exactly 0.0.

Tolerance: fp32, max |packed - alone| <= 1e-5 x (largest |alone| of that tensor) + 1e-7 for one forward/backward.
The only difference is the order of float sums (a grouped convolution may pick another algorithm than a plain one):
one rounding is ~6e-8 relative, and the layers of sums and BatchNorm divisions stay below 1e-5 (measured <= 3e-6
on outputs, <= 2e-6 on gradients). A gradient that is mathematically 0 but computed as a sum of larger terms (a
cnn5 conv bias feeding BatchNorm) is compared at the scale of the member's largest gradient. After training steps
the differences grow with every step, so parameters and outputs are compared at 1e-4 of the member's largest
parameter / output (measured <= 1e-5 after five SGD or Adam steps). The ResNet runs on 16x16 images: on 8x8 (SGD
lr 0.01) one step put a pre-activation within 3e-7 of 0, where fp32 and fp64 differ in sign, so the plain fp32
model's own gradient was 16% off its fp64 value (the pack happened to match fp64); no tolerance covers a ReLU kink.
Padding is compared with == 0.0.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from ddescent.metrics import evaluate, per_model_loss
from ddescent.models import build, packed_conv
from ddescent.models.resnet18 import PreActBlock
from ddescent.packing import Single

SHAPES = {"cnn5": (3, 8, 8), "resnet18": (3, 16, 16), "cnn1d": (40,)}
WIDTHS = [1, 4, 2]  # unsorted on purpose: the widest member need not come first or last
B = 8
RTOL, ATOL = 1e-5, 1e-7
RTOL_STEPS = 1e-4  # after training steps: rounding differences grow with each step (see the module docstring)
OPTIMS = {"sgd": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
          "adam": {"name": "adam", "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 5e-3}}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_optimizer(params, cfg):
    """The training loop's optimizers (fused SGD and Adam)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay,
                            fused=True)




def _member(name, width, seed):
    cfg = OmegaConf.create({"name": name, "width": width})
    return build(cfg, SHAPES[name], 10, torch.Generator().manual_seed(seed))


def _members(name, widths=WIDTHS):
    return [_member(name, w, 10 + i) for i, w in enumerate(widths)]


def _batch(name, seed, G=len(WIDTHS)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(G, B, *SHAPES[name], generator=g), torch.randint(0, 10, (G, B), generator=g)


def _close(a, b, what="", scale=None, rtol=RTOL):
    """|a - b| within rtol of the reference's scale: its largest entry, or `scale` where the rounding comes from
    larger terms than the result (a gradient that sums to ~0, such as a conv bias before BatchNorm)."""
    gap, scale = (a - b).abs().max().item(), max(b.abs().max().item(), scale or 0.0)
    assert gap <= rtol * scale + ATOL, f"{what}: |packed - alone| = {gap:.2e} at scale {scale:.2e}"


class PaddingWatch:
    """Forward hooks that check every padded activation of the pack is exactly 0.0, and tensor hooks that check
    the gradient reaching every padded activation is exactly 0.0."""

    def __init__(self, net: packed_conv.PackedConvNet):
        self.net, self.checked, self.grads_checked, self.current = net, 0, 0, None
        self.handles = []
        for name, m in net.body.named_modules():
            if name in net.leaf_types and net.leaf_types[name] != "head":
                self.handles.append(m.register_forward_hook(self._leaf(name)))
            elif isinstance(m, PreActBlock):
                self.handles.append(m.register_forward_hook(self._fixed(f"{name}.conv2")))
            elif isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
                self.handles.append(m.register_forward_hook(self._follow))
        head = net.body.get_submodule(net.head_name)
        self.handles.append(head.register_forward_pre_hook(lambda m, args: self._check(args[0], net.head_name)))

    def _check(self, out, name):
        mask = self.net.channel_mask(name).reshape(-1)
        assert out.shape[1] in (mask.numel(), mask.numel() * out.shape[-1])
        if out.dim() == 2 and out.shape[1] != mask.numel():  # cnn1d's flattened [B, G c L]
            mask = mask.repeat_interleave(out.shape[1] // mask.numel())
        assert torch.all(out[:, mask] == 0), f"padded activations of {name} are not zero"
        self.checked += 1
        if out.requires_grad:
            def on_grad(grad, mask=mask, name=name):
                assert torch.all(grad[:, mask] == 0), f"gradient at padded activations of {name} is not zero"
                self.grads_checked += 1
            out.register_hook(on_grad)

    def _leaf(self, name):
        def hook(module, args, out):
            self.current = name
            self._check(out, name)
        return hook

    def _fixed(self, name):
        return lambda module, args, out: self._check(out, name)

    def _follow(self, module, args, out):
        self._check(out, self.current)

    def remove(self):
        for h in self.handles:
            h.remove()


def _assert_padding_zero(net, optimizer=None):
    state = net.state_dict()
    params = dict(net.named_parameters())
    masks = net.padding_masks()
    assert masks, "no padding to check"
    for key, mask in masks.items():
        assert torch.all(state[key][mask] == 0), f"padded entries of {key} moved"
        if key in params:
            p = params[key]
            if p.grad is not None:
                assert torch.all(p.grad[mask] == 0), f"padded gradient of {key} is not zero"
            if optimizer is not None:
                for k, v in optimizer.state[p].items():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        assert torch.all(v[mask] == 0), f"optimizer state {k} of {key} is not zero in the padding"


@pytest.mark.parametrize("name", list(SHAPES))
def test_unpack_of_a_fresh_pack_gives_each_member_back_exactly(name):
    members = _members(name)
    net = packed_conv.pack(members)
    _assert_padding_zero(net)
    for g, (w, m) in enumerate(zip(WIDTHS, members)):
        back = net.unpack(g, _member(name, w, seed=99))
        sa, sb = m.state_dict(), back.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_outputs_and_gradients_equal_each_members_own(name, mode):
    members = _members(name)
    net = packed_conv.pack(members)
    x, y = _batch(name, 0)
    if mode == "eval":  # move the running statistics first (a train-mode pass each), so eval mode uses them
        with torch.no_grad():
            net(x)
            for g, m in enumerate(members):
                m(x[g])
        net.eval()
        for m in members:
            m.eval()
    watch = PaddingWatch(net)
    out = net(x)
    assert out.shape == (len(WIDTHS), B, 10)
    per_model_loss(out, y).sum().backward()
    watch.remove()
    assert watch.checked >= 4 and watch.grads_checked >= 4
    for g, m in enumerate(members):
        alone = m(x[g])
        F.cross_entropy(alone, y[g]).backward()
        _close(out[g], alone, f"{name} member {g} output ({mode})")
        packed_grads = _grads_of(net).unpack(g, copy.deepcopy(m))  # member g's slice of the pack's gradients
        scale = max(q.grad.abs().max().item() for q in m.parameters())
        for (k, gp), (_, q) in zip(packed_grads.named_parameters(), m.named_parameters()):
            _close(gp, q.grad, f"{name} member {g} gradient of {k} ({mode})", scale)
    _assert_padding_zero(net)


def _grads_of(net):
    """A copy of the pack whose parameters hold the pack's gradients (so unpack extracts a member's gradient)."""
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p, q in zip(twin.parameters(), net.parameters()):
            p.copy_(q.grad)
    return twin


@pytest.mark.parametrize("optim", list(OPTIMS))
@pytest.mark.parametrize("name", list(SHAPES))
def test_steps_of_a_pack_equal_members_trained_alone_and_padding_stays_zero(name, optim):
    cfg = OmegaConf.create(OPTIMS[optim])
    alone = _members(name)
    net = packed_conv.pack(_members(name))
    opt = make_optimizer(net.parameters(), cfg)
    opts = [make_optimizer(m.parameters(), cfg) for m in alone]
    steps = 5
    for step in range(steps):
        x, y = _batch(name, 100 + step)  # each member its own batch
        opt.zero_grad()
        per_model_loss(net(x), y).sum().backward()
        opt.step()
        for g, (m, o) in enumerate(zip(alone, opts)):
            o.zero_grad()
            F.cross_entropy(m(x[g]), y[g]).backward()
            o.step()
        _assert_padding_zero(net, opt)
    x, y = _batch(name, 999)
    for mode in ("train", "eval"):
        net.train(mode == "train")
        watch = PaddingWatch(net)
        out = net(x)
        watch.remove()
        for g, (w, m) in enumerate(zip(WIDTHS, alone)):
            m.train(mode == "train")
            back = net.unpack(g, _member(name, w, seed=99))
            back.train(mode == "train")
            with torch.no_grad():
                reference = m(x[g])
                _close(out[g], reference, f"{name} member {g} output after {optim} steps ({mode})", rtol=RTOL_STEPS)
                _close(back(x[g]), reference, f"{name} unpacked member {g} output ({mode})", rtol=RTOL_STEPS)
        if mode == "train":  # the train-mode pass moved the running statistics of both the same way
            for g, (w, m) in enumerate(zip(WIDTHS, alone)):
                back = net.unpack(g, _member(name, w, seed=99))
                scale = max(p.abs().max().item() for p in m.parameters())
                for (k, a), b in zip(back.state_dict().items(), m.state_dict().values()):
                    if a.is_floating_point():
                        _close(a, b, f"{name} member {g} {k} after {optim} steps", scale, RTOL_STEPS)
                    else:
                        assert torch.equal(a, b), k
    _assert_padding_zero(net, opt)


@pytest.mark.parametrize("name", list(SHAPES))
def test_members_do_not_mix(name):
    """Changing one member's images changes no other member's outputs (bit for bit), and one member's loss
    gives every other member (and the padding) exactly zero gradient: convolutions, norms, pools and the head
    stay within a member."""
    net = packed_conv.pack(_members(name))
    x, y = _batch(name, 0)
    out = net(x)
    x2 = x.clone()
    x2[0] = 100 * torch.randn_like(x[0]) + 3
    out2 = net(x2)
    assert not torch.equal(out2[0], out[0])
    assert torch.equal(out2[1:], out[1:])
    net.zero_grad()
    per_model_loss(net(x), y)[0].backward()
    grads = _grads_of(net)
    for g in (1, 2):
        other = grads.unpack(g, _member(name, WIDTHS[g], seed=99))
        assert all(torch.all(p == 0) for p in other.parameters()), f"member {g} got member 0's gradient"
    _assert_padding_zero(net)


@pytest.mark.parametrize("name", ["cnn5", "resnet18"])
def test_evaluation_on_shared_data_equals_each_member_evaluated_alone(name):
    """The loop evaluates a pack on the same data expanded over members ([G, n, ...] views of one tensor)."""
    members = _members(name)
    net = packed_conv.pack(members)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(40, *SHAPES[name], generator=g), torch.randint(0, 10, (40,), generator=g)
    error, loss = evaluate(net, x, y, len(WIDTHS))
    for i, m in enumerate(members):
        e, l = evaluate(Single(m), x, y, 1)
        assert error[i].item() == e.item()
        _close(loss[i:i + 1], l, f"member {i} evaluation loss")


def test_refuses_what_it_cannot_pack():
    with pytest.raises(ValueError, match="one structure"):
        packed_conv.pack([_member("cnn5", 2, 0), _member("resnet18", 2, 0)])
    mlp = build(OmegaConf.create({"name": "mlp", "width": 4, "depth": 2}), (40,), 10, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError):
        packed_conv.pack([mlp, copy.deepcopy(mlp)])
