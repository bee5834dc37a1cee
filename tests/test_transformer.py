"""The transformer family and the two sequence datasets: masks, parameter count, readers, training."""

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ddescent import ConfigError
from ddescent.data import parallel_text, seq_synthetic
from ddescent.data.parallel_text import EOS, PAD, SEP, UNK
from ddescent.models import count_params, transformer

IGNORE = -100
CONF = Path(__file__).resolve().parents[1] / "conf"


def model_cfg(**kw):
    base = dict(name="transformer", width=16, heads=4, layers=2, ff_mult=4, positions="learned", dropout=0.0, pad_id=0)
    return OmegaConf.create({**base, **kw})


def build(vocab=30, length=12, seed=0, **kw):
    return transformer.build(model_cfg(**kw), (length,), vocab, torch.Generator().manual_seed(seed)).eval()


def synthetic_cfg(**kw):
    cfg = OmegaConf.load(CONF / "data/seq_synthetic.yaml")
    cfg.merge_with({**dict(n_train=None, label_noise=0.0, data_seed=0, val_fraction=0.0, pool_size=300, test_size=100), **kw})
    return cfg


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_no_position_sees_the_future(positions):
    model = build(positions=positions)
    x = torch.randint(4, 30, (3, 12))
    base = model(x)
    for j in (1, 5, 11):
        changed = x.clone()
        changed[:, j] = (changed[:, j] - 3) % 26 + 4  # another real token
        out = model(changed)
        assert torch.allclose(out[:, :j], base[:, :j], atol=1e-5), f"positions before {j} saw token {j}"
        assert not torch.allclose(out[:, j:], base[:, j:], atol=1e-5)  # and the token does matter


def test_padding_is_never_attended():
    model = build()
    x = torch.randint(4, 30, (2, 12))
    x[0, 5:] = PAD  # a 5-token sequence beside a full one
    alone = model(x[:1, :5])[0]
    batched = model(x)[0]
    assert torch.allclose(batched[:5], alone, atol=1e-5)  # more padding, other rows: same real outputs
    x[1, 7:] = PAD  # shorter neighbour: the batch is cut to 7 columns, padding keys 5, 6 of row 0 stay masked
    out = model(x)
    assert torch.allclose(out[0, :5], alone, atol=1e-5)
    assert torch.all(out[:, 7:] == 0)  # columns of padding only come back as zero logits (ignored by y = -100)


@pytest.mark.parametrize("kw", [dict(), dict(positions="sinusoidal"), dict(width=24, heads=3, layers=1, ff_mult=2),
                                dict(width=8, heads=1, layers=3)])
def test_n_params_formula_counts_every_trainable_parameter(kw):
    cfg = model_cfg(**kw)
    for vocab, length in ((30, 12), (169, 21)):
        model = transformer.build(cfg, (length,), vocab, torch.Generator().manual_seed(0))
        assert transformer.n_params(cfg, (length,), vocab) == count_params(model)
    d = cfg.width  # the docstring's closed form, written out once for the default shape
    if kw == {}:
        assert transformer.n_params(cfg, (12,), 30) == 30 * d + 12 * d + 2 * (12 * d * d + 13 * d) + 2 * d + d * 30 + 30


def test_init_comes_from_the_generator_alone():
    torch.manual_seed(123)
    a = build(seed=5).state_dict()
    torch.manual_seed(456)
    b = build(seed=5).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["tokens.weight"], build(seed=6).state_dict()["tokens.weight"])


def test_impossible_shapes_are_config_errors():
    with pytest.raises(ConfigError, match="divisible by model.heads"):
        transformer.check(model_cfg(width=10, heads=4))
    with pytest.raises(ConfigError, match="model.positions"):
        transformer.check(model_cfg(positions="rotary"))


# ----------------------------------------------------------------------------- synthetic data


def test_synthetic_generator_is_deterministic_and_streams_are_separate():
    a = seq_synthetic.load(synthetic_cfg())
    b = seq_synthetic.load(synthetic_cfg())
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y_test, b.y_test)
    other = seq_synthetic.load(synthetic_cfg(generator_seed=1))
    assert not np.array_equal(a.x, other.x)
    bigger = seq_synthetic.load(synthetic_cfg(pool_size=400))
    assert np.array_equal(bigger.x[:300], a.x) and np.array_equal(bigger.x_test, a.x_test)
    assert a.n_classes == seq_synthetic.n_classes(synthetic_cfg()) == 60  # the default sizes' vocabulary
    assert a.x.shape[1] == seq_synthetic.input_shape(synthetic_cfg())[0]
    noisy = seq_synthetic.load(synthetic_cfg(noise=0.2))  # same sentences, a fifth of the target words random
    src = a.x * (np.cumsum(a.x == SEP, axis=1) == 0)
    assert np.array_equal(noisy.x * (np.cumsum(noisy.x == SEP, axis=1) == 0), src)
    words = (a.y != IGNORE) & (a.y != EOS)
    assert 0.15 < np.mean(noisy.y[words] != a.y[words]) < 0.25


def test_synthetic_pairs_follow_the_layout_and_the_rules():
    cfg = synthetic_cfg()
    pool = seq_synthetic.load(cfg)
    lex = seq_synthetic.Lexicon(*seq_synthetic._sizes(cfg), rng=np.random.default_rng([cfg.generator_seed, 0]))
    for x, y in zip(pool.x, pool.y):
        n = int(np.flatnonzero(x == SEP)[0])
        tgt = y[y != IGNORE]
        assert tgt[-1] == EOS and np.array_equal(x[n + 1:n + len(tgt)], tgt[:-1])  # teacher forcing: shifted by one
        assert np.all(y[:n] == IGNORE) and np.all(x[n + len(tgt):] == PAD)
        src = x[:n]
        subject = src[np.isin(src, lex.noun_s)][0]
        noun, number = np.argwhere(lex.noun_s == subject)[0]
        assert np.isin(tgt[-2], lex.verb_t[:, number])  # verb-final, agreeing with the subject's number
        assert tgt[1] == lex.noun_t[noun, number]  # the subject noun follows its determiner
        assert np.isin(tgt[0], lex.det_t[:, lex.gender[noun], number])  # determiner: the noun's gender and number


# ----------------------------------------------------------------------------- parallel text


def write_corpus(root, train, test):
    for split, pairs in (("train", train), ("test", test)):
        (root / f"{split}.de").write_text("".join(s + "\n" for s, _ in pairs))
        (root / f"{split}.en").write_text("".join(t + "\n" for _, t in pairs))


def text_cfg(root, **kw):
    cfg = OmegaConf.load(CONF / "data/parallel_text.yaml")
    cfg.merge_with(dict(root=root and str(root), n_train=None, label_noise=0.0, data_seed=0, val_fraction=0.0, **kw))
    return cfg


def test_parallel_text_reader(tmp_path):
    train = [("das haus", "the house"), ("das boot ist rot", "the boat is red"),
             ("ein sehr sehr sehr sehr langes satz", "too long"), ("das", "the")]
    write_corpus(tmp_path, train, [("das rote haus", "the red house")])
    cfg = text_cfg(tmp_path, vocab_size=7, max_len=4)
    pool = parallel_text.load(cfg)
    vocab = parallel_text.vocabulary(cfg)
    # "the" (3x) and "das" (3x) lead, then ties alphabetically: boat, house; the long pair is dropped.
    assert vocab == ["<pad>", "<unk>", "<sep>", "<eos>", "das", "the", "boat"]
    assert pool.n_classes == 7 and len(pool.x) == 3 == parallel_text.pool_size(cfg)
    das, the, boat = 4, 5, 6
    assert vocab.index("boat") == boat
    assert pool.x[0].tolist() == [das, UNK, SEP, the, UNK] + [PAD] * 4
    assert pool.y[0].tolist() == [IGNORE, IGNORE, the, UNK, EOS] + [IGNORE] * 4
    assert pool.x.shape[1] == pool.x_test.shape[1] == parallel_text.input_shape(cfg)[0] == 9  # 4 + SEP + 4
    assert pool.x_test[0].tolist() == [das, UNK, UNK, SEP, the, UNK, UNK, PAD, PAD]


def test_parallel_text_bad_roots_name_the_files(tmp_path):
    with pytest.raises(ConfigError, match="data.root: not set"):
        parallel_text.check(text_cfg(None))
    with pytest.raises(ConfigError, match=r"missing train\.de, train\.en, test\.de, test\.en"):
        parallel_text.check(text_cfg(tmp_path))
    write_corpus(tmp_path, [("a", "b")], [("a", "b")])
    (tmp_path / "train.en").write_text("b\nc\n")
    with pytest.raises(ConfigError, match="not aligned"):
        parallel_text.check(text_cfg(tmp_path))


def test_token_noise_touches_target_tokens_only():
    from ddescent import data

    cfg = synthetic_cfg(n_train=200, label_noise=0.3, noise_mode="wrong")
    cfg.name = "seq_synthetic"
    noisy, pool = data.load(cfg), seq_synthetic.load(cfg)
    idx = np.random.default_rng(0).permutation(len(pool.y))[:200]  # the shared subsampling of data_seed 0
    x, y = pool.x[idx], pool.y[idx]
    assert noisy.x_train.dtype == torch.long and np.array_equal(noisy.x_train.numpy(), x)  # inputs stay clean
    y_noisy = noisy.y_train.numpy()
    assert np.array_equal(y_noisy == IGNORE, y == IGNORE)  # prefix and padding never receive a label
    flipped = (y_noisy != y)[y != IGNORE]
    assert abs(flipped.mean() - 0.3) < 0.005 and abs(noisy.label_noise_effective - 0.3) < 0.005


# ----------------------------------------------------------------------------- training


def test_short_training_run_lowers_the_test_loss(tmp_path):
    from conftest import plan
    from ddescent import store
    from ddescent.runner import execute

    specs = plan(["experiment=fig9_11_transformer", "n_train=200", "width=16", "epochs=10", "train.eval_points=2",
                  "train.batch_size=20", "label_noise=0", "data.noise=0", "data.pool_size=300", "data.test_size=200",
                  "progress=off", "optim.lr=0.005"], tmp_path)
    assert [o.status for o in execute(specs)] == ["complete"]
    cfg = specs[0].cfg
    df = store.load(tmp_path).sort_values("epoch")
    first, last = df.iloc[0], df.iloc[-1]
    assert last.epoch == 10 and first.n_params == last.n_params == transformer.n_params(
        cfg.model, seq_synthetic.input_shape(cfg.data), seq_synthetic.n_classes(cfg.data))
    assert last.train_loss < 0.6 * first.train_loss and last.test_loss < 0.7 * first.test_loss
    assert last.test_error < first.test_error - 0.2


def test_length_bucketing_groups_similar_lengths_and_covers_every_sample():
    import torch

    from ddescent.batches import bucketed_batches, sequence_lengths
    from ddescent.metrics import IGNORE_INDEX

    n, T = 400, 30
    lengths_true = torch.randint(5, T + 1, (n,), generator=torch.Generator().manual_seed(0))
    y = torch.full((n, T), IGNORE_INDEX)
    for i, L in enumerate(lengths_true.tolist()):
        y[i, 2:L] = 1  # targets end at the sample's length
    lengths = sequence_lengths(y)
    assert torch.equal(lengths, lengths_true)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1)).unsqueeze(0)
    batches = bucketed_batches(perm, lengths, 20, 10, torch.Generator().manual_seed(2))
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))  # every sample once per epoch
    spread = sum(int(lengths[b[0]].max() - lengths[b[0]].min()) for b in batches) / len(batches)
    random_spread = sum(int(lengths[perm[0, i:i + 20]].max() - lengths[perm[0, i:i + 20]].min())
                        for i in range(0, n, 20)) / (n // 20)
    assert spread < random_spread / 4  # batches hold similar lengths
    assert sequence_lengths(torch.zeros(5, dtype=torch.long)) is None
