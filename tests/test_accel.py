"""Speed settings of the step (ddescent.accel): compiled and graph-captured steps give the eager step's numbers,
bf16 stays near fp32, the TF32 flags come back as they were, channels-last changes no output.

Tolerances: fp32 paths that only reorder float sums (compiled kernels, channels-last layouts) agree to 1e-5 of the
tensor's scale, as in tests/test_packed_conv.py. bf16 has an 8-bit mantissa (relative rounding 2^-9 ~ 2e-3 per
operation): the small ResNet's loss differs from fp32 by well under 1% (measured 4e-4 at initialisation and 1.4e-3
after four Adam steps), so 2% is the bound.
"""

import contextlib
import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ddescent import accel
from ddescent.errors import ConfigError
from ddescent.metrics import per_model_loss
from ddescent.models import build, mlp, packed_conv
from ddescent.models import Single
from ddescent.step import Step

CUDA = torch.cuda.is_available()


pytestmark = pytest.mark.usefixtures("one_thread")


def _loss(out, y):
    return per_model_loss(out, y).sum()


def _pack(name="cnn5", widths=(1, 2), shape=(3, 8, 8)):
    return packed_conv.pack([build(OmegaConf.create({"name": name, "width": w}), shape, 10,
                                   torch.Generator().manual_seed(i)) for i, w in enumerate(widths)])


def _batches(shape, sizes, G=2, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(G, b, *shape, generator=g).to(device), torch.randint(0, 10, (G, b), generator=g).to(device))
            for b in sizes]


def _sgd(net):
    return torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, fused=True)


def _adam(net):
    return torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)


def _close(a, b, rtol=1e-5, what=""):
    gap, scale = (a - b).abs().max().item(), b.abs().max().item()
    assert gap <= rtol * scale + 1e-7, f"{what}: gap {gap:.2e} at scale {scale:.2e}"


def _same_params(a, b, rtol=1e-5):
    scale = max(p.abs().max().item() for p in b.parameters())
    for (k, p), q in zip(a.named_parameters(), b.parameters()):
        gap = (p - q).abs().max().item()
        assert gap <= rtol * scale + 1e-7, f"{k}: gap {gap:.2e} at scale {scale:.2e}"


def test_eager_step_is_zero_grad_forward_backward_update_with_the_penalty():
    nets = [_pack() for _ in range(2)]
    opts = [_sgd(n) for n in nets]
    penalty = lambda net: 1e-3 * sum(p.square().sum() for p in net.parameters())  # noqa: E731
    step = Step(nets[0], opts[0], _loss, penalty=lambda epoch: penalty(nets[0]))
    for x, y in _batches((3, 8, 8), [8, 8, 5]):
        step(x, y)
        opts[1].zero_grad()
        (_loss(nets[1](x), y) + penalty(nets[1])).backward()
        opts[1].step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)


def test_hand_written_backward_is_used_eagerly_and_equals_autograd():
    def packed_mlp():
        return mlp.pack([build(OmegaConf.create({"name": "mlp", "width": w, "depth": 2}), (40,), 10,
                               torch.Generator().manual_seed(i)) for i, w in enumerate((3, 8))])

    nets = [packed_mlp() for _ in range(2)]
    opts = [_sgd(n) for n in nets]
    calls = []

    def by_hand(x, y):
        calls.append(1)
        nets[0].backward_by_hand(x, y)

    steps = [Step(nets[0], opts[0], _loss, backward=by_hand), Step(nets[1], opts[1], _loss)]
    for x, y in _batches((40,), [16, 16, 16]):
        for s in steps:
            s(x, y)
    assert len(calls) == 3
    _same_params(nets[0], nets[1])
    bf16 = Step(nets[0], opts[0], _loss, precision="bf16", backward=by_hand)  # fp32 code: not used
    bf16(*_batches((40,), [16])[0])
    assert len(calls) == 3


@pytest.mark.parametrize("opt", [_sgd, _adam])
def test_compiled_step_equals_the_eager_step_and_runs_other_shapes_eagerly(opt):
    """torch.compile's graph capture (Dynamo + AOTAutograd's joint forward/backward) with the aot_eager backend:
    the same plumbing as compile=default without C++ code generation (that is the slow test below)."""
    nets = [_pack() for _ in range(2)]
    opts = [opt(n) for n in nets]
    eager = Step(nets[0], opts[0], _loss)
    compiled = Step(nets[1], opts[1], _loss, compile="default", compile_options={"backend": "aot_eager"})
    for x, y in _batches((3, 8, 8), [8, 8, 8, 5, 8]):  # a partial batch in the middle, as the last of an epoch
        eager(x, y)
        compiled(x, y)
    assert compiled.eager_calls == 1
    _same_params(nets[1], nets[0])
    x, y = _batches((3, 8, 8), [8], seed=1)[0]
    _close(nets[1](x), nets[0](x), what="outputs")


@pytest.mark.slow
def test_inductor_compiled_step_equals_the_eager_step():
    """compile=default with the real inductor backend (C++ kernels on a CPU). ~45 s on a busy 2-core machine with
    an empty inductor cache, ~6 s with a warm one: marked slow."""
    nets = [_pack("cnn1d", shape=(40,)) for _ in range(2)]
    opts = [_sgd(n) for n in nets]
    eager = Step(nets[0], opts[0], _loss)
    compiled = Step(nets[1], opts[1], _loss, compile="default")
    for x, y in _batches((40,), [8, 8, 8, 5]):
        eager(x, y)
        compiled(x, y)
    assert compiled.eager_calls == 1
    _same_params(nets[1], nets[0])


def test_graphs_are_refused_off_cuda_and_with_what_a_graph_cannot_see():
    net = _pack()
    with pytest.raises(ConfigError, match="train.compile=graphs: CUDA graphs need a CUDA device"):
        Step(net, _sgd(net), _loss, compile="graphs")
    with pytest.raises(ConfigError, match="schedule"):
        accel.check("fp32", "graphs", "cuda", schedule=True)
    with pytest.raises(ConfigError, match="penalty"):
        accel.check("fp32", "graphs", "cuda", penalty=True)
    with pytest.raises(ConfigError, match="train.precision='fp16'"):
        accel.check("fp16", "none", "cpu")
    with pytest.raises(ConfigError, match="train.compile='max'"):
        accel.check("fp32", "max", "cpu")
    accel.check("bf16", "reduce-overhead", "cpu")  # allowed: on a CPU reduce-overhead is default


def test_bf16_runs_on_cpu_and_its_loss_stays_near_fp32():
    nets = {p: _pack("resnet18", (2, 3), (3, 16, 16)) for p in ("fp32", "bf16")}
    opts = {p: _adam(n) for p, n in nets.items()}
    batches = _batches((3, 16, 16), [8] * 4)
    losses = {}
    for p, net in nets.items():
        with accel.precision_context(p, "cpu") as forward:
            with torch.no_grad(), forward():
                out = net(batches[0][0])
                losses[p] = [_loss(out, batches[0][1]).item()]
            assert out.dtype == (torch.bfloat16 if p == "bf16" else torch.float32)
            step = Step(net, opts[p], _loss, precision=p)
            for x, y in batches:
                step(x, y)
            with torch.no_grad(), forward():
                losses[p].append(_loss(net(batches[0][0]), batches[0][1]).item())
    assert all(p.dtype == torch.float32 and p.isfinite().all() for p in nets["bf16"].parameters())
    for before_after in zip(losses["bf16"], losses["fp32"]):
        bf16, fp32 = before_after
        assert abs(bf16 - fp32) <= 0.02 * abs(fp32), losses
    assert losses["bf16"][1] < losses["bf16"][0]  # it learned the batches


@pytest.mark.parametrize("name,inside", [("fp32", (False, False)), ("tf32", (True, True)), ("bf16", (False, False))])
def test_precision_sets_the_tf32_flags_for_the_run_and_restores_them(name, inside):
    saved = accel._tf32_state()
    try:
        accel._set_tf32(True, False)  # not PyTorch's default (False, True): restoring must not mean resetting
        with accel.precision_context(name, "cpu"):
            assert accel._tf32_state() == inside
        assert accel._tf32_state() == (True, False)
        with contextlib.suppress(RuntimeError), accel.precision_context(name, "cpu"):
            raise RuntimeError("a run that fails")
        assert accel._tf32_state() == (True, False)
    finally:
        accel._set_tf32(*saved)




@pytest.mark.parametrize("kind", ["packed cnn5", "packed resnet18", "single resnet18"])
def test_channels_last_gives_the_same_outputs_and_gradients(kind):
    if kind.startswith("packed"):
        name = kind.split()[1]
        net = _pack(name, (1, 3), (3, 16, 16))
        x, y = _batches((3, 16, 16), [6])[0]
    else:
        net = Single(build(OmegaConf.create({"name": "resnet18", "width": 2}), (3, 16, 16), 10,
                           torch.Generator().manual_seed(0)))
        x, y = _batches((3, 16, 16), [6], G=1)[0]
    fast = copy.deepcopy(net)
    fast.to_channels_last(x)
    first = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    seen = []
    first.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    outs = []
    for model in (net, fast):
        out = model(x)
        _loss(out, y).backward()
        outs.append(out)
    assert seen == [True]
    _close(outs[1], outs[0], what="outputs")
    scale = max(p.grad.abs().max().item() for p in net.parameters())
    for p, q in zip(fast.parameters(), net.parameters()):
        assert (p.grad - q.grad).abs().max().item() <= 1e-5 * scale + 1e-7


def test_channels_last_leaves_other_nets_alone():
    net = _pack("cnn1d", (2, 3), (40,))
    before = [p.stride() for p in net.parameters()]
    net.to_channels_last(torch.randn(2, 4, 40))
    assert [p.stride() for p in net.parameters()] == before and net.memory_format is torch.contiguous_format


@pytest.mark.skipif(not CUDA, reason="CUDA graphs and cuDNN need a GPU")
@pytest.mark.parametrize("mode,precision", [("graphs", "fp32"), ("graphs", "bf16"), ("reduce-overhead", "fp32")])
def test_on_cuda_captured_steps_equal_the_eager_step(mode, precision):
    with accel.precision_context(precision, "cuda"):
        nets = [_pack("resnet18", (2, 3), (3, 16, 16)).cuda() for _ in range(2)]
        opts = [_adam(n) for n in nets]
        eager = Step(nets[0], opts[0], _loss, precision=precision)
        fast = Step(nets[1], opts[1], _loss, compile=mode, precision=precision)
        for x, y in _batches((3, 16, 16), [8] * 6 + [5] + [8] * 3, device="cuda"):
            eager(x, y)
            fast(x, y)
        torch.cuda.synchronize()
        # ten steps apart, as in tests/test_packed_conv.py; bf16 roundings may differ between kernel choices
        _same_params(nets[1], nets[0], rtol=1e-4 if precision == "fp32" else 2e-2)
        assert fast.eager_calls >= 1
