"""Parallel text from files: `train.<src>`/`train.<tgt>` and `test.<src>`/`test.<tgt>` under `data.root`.

One sentence per line, tokens separated by whitespace (tokenise, lowercase or BPE-encode beforehand). The
vocabulary is built once from both sides of the whole training file (not the `n_train` subsample, so every
run of a sweep has the same vocabulary and parameter count): one joint id space, most frequent tokens first,
capped at `vocab_size` ids including the four specials; rarer tokens become <unk>. Training pairs with a side
longer than `max_len` tokens (or empty) are dropped; longer test sentences are cut to `max_len`. `valid.*`
files are not read: ddescent carves its validation split from the training pool (`val_fraction`).

Samples use the layout of `ddescent.models.transformer` (source prefix, then the target shifted right):

    x = [s_1 .. s_n, SEP, t_1 .. t_m, PAD ..]      y = [-100 x n, t_1 .. t_m, EOS, -100 ..]

Preparing IWSLT'14 de-en once (fairseq's recipe: Moses tokenisation, lowercasing, 160K train / 6.75K test):

    git clone https://github.com/facebookresearch/fairseq && cd fairseq/examples/translation
    bash prepare-iwslt14.sh          # writes iwslt14.tokenized.de-en/{train,valid,test}.{de,en}
    ddescent sweep experiment=fig9_11_iwslt14 data.root=$PWD/iwslt14.tokenized.de-en

(the script also applies BPE; its files are BPE-encoded, which whitespace tokenisation reads as is.)
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np

from ddescent.checks import POSITIVE_INT, ConfigError, Rule
from ddescent.data.base import Dataset, Pool, data_root
from ddescent.files import stamp as file_stamp

RULES = {
    "data.src": Rule(lambda v: isinstance(v, str) and v != "", "a file suffix such as de"),
    "data.tgt": Rule(lambda v: isinstance(v, str) and v != "", "a file suffix such as en"),
    "data.vocab_size": POSITIVE_INT,
    "data.max_len": POSITIVE_INT,
}

SPECIALS = ("<pad>", "<unk>", "<sep>", "<eos>")
PAD, UNK, SEP, EOS = range(len(SPECIALS))
IGNORE = -100  # ddescent.train.IGNORE_INDEX; not imported so that data loading does not pull in the loop

def encode(pairs: list[tuple[list[int], list[int]]], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) arrays [N, length] for (source ids, target ids) pairs, in the layout above."""
    length = length or max((len(s) + len(t) + 1 for s, t in pairs), default=1)
    x = np.full((len(pairs), length), PAD, dtype=np.int64)
    y = np.full((len(pairs), length), IGNORE, dtype=np.int64)
    for i, (s, t) in enumerate(pairs):
        n, m = len(s), len(t)
        x[i, :n + 1 + m] = [*s, SEP, *t]
        y[i, n:n + m + 1] = [*t, EOS]
    return x, y


def paths(cfg) -> dict[str, Path]:
    root = data_root(cfg.root)
    return {f"{split}.{side}": root / f"{split}.{cfg[side]}" for split in ("train", "test") for side in ("src", "tgt")}


def files(cfg) -> list[Path]:
    return list(paths(cfg).values())


def check(cfg) -> None:
    if cfg.get("root") in (None, "", "???"):
        raise ConfigError("data.root: not set; point it at a folder with "
                          f"train.{cfg.src}, train.{cfg.tgt}, test.{cfg.src}, test.{cfg.tgt}")
    found = paths(cfg)
    missing = [p.name for p in found.values() if not p.is_file()]
    if missing:
        root = Path(str(cfg.root)).expanduser()
        needs = f"train.{cfg.src}, train.{cfg.tgt}, test.{cfg.src}, test.{cfg.tgt}"
        where = "" if len(missing) == len(found) else f" (the folder needs {needs})"
        raise ConfigError(f"data.root={root}: missing {', '.join(missing)}{where}; one sentence per line, "
                          "whitespace tokens (ddescent/data/parallel_text.py has the IWSLT'14 recipe)")
    if int(cfg.vocab_size) <= len(SPECIALS):
        raise ConfigError(f"data.vocab_size={cfg.vocab_size}: expected more than the {len(SPECIALS)} special tokens")
    _corpus(*_key(cfg))  # raises ConfigError for misaligned files


def _key(cfg) -> tuple:
    """What the corpus depends on; the files' stamps (ddescent.files.stamp) make an edited file a new corpus."""
    stamp = tuple((str(p.resolve()), *file_stamp(p)) for p in paths(cfg).values())
    return stamp, int(cfg.vocab_size), int(cfg.max_len)


def _lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f]
    except UnicodeDecodeError as exc:
        raise ConfigError(f"data.root: {path} is not UTF-8 text (byte {exc.start}); expected one sentence per line, "
                          "whitespace tokens") from exc


@functools.lru_cache(maxsize=2)
def _corpus(stamp: tuple, vocab_size: int, max_len: int) -> dict:
    train_src, train_tgt, test_src, test_tgt = (_lines(p) for p, *_ in stamp)
    for a, b, split in ((train_src, train_tgt, "train"), (test_src, test_tgt, "test")):
        if len(a) != len(b):
            raise ConfigError(f"data.root: the {split} files are not aligned "
                              f"({len(a)} source lines, {len(b)} target lines)")
    train = [(s, t) for s, t in zip(train_src, train_tgt) if 0 < len(s) <= max_len and 0 < len(t) <= max_len]
    test = [(s[:max_len], t[:max_len]) for s, t in zip(test_src, test_tgt) if s and t]
    if not train:
        raise ConfigError(f"data.root: no training pair in {stamp[0][0]} / {stamp[1][0]} has both sides non-empty and "
                          f"at most data.max_len={max_len} tokens")
    if not test:
        raise ConfigError(f"data.root: the test files {stamp[2][0]} / {stamp[3][0]} hold no pair with both sides "
                          "non-empty")

    counts = Counter(tok for s, t in train for tok in (*s, *t))
    # Most frequent first; ties alphabetically, so the vocabulary does not depend on the order of the lines.
    ranked = sorted(counts, key=lambda tok: (-counts[tok], tok))[: vocab_size - len(SPECIALS)]
    vocab = list(SPECIALS) + ranked
    index = {tok: i for i, tok in enumerate(vocab)}

    def ids(tokens):
        return [index.get(tok, UNK) for tok in tokens]

    train_ids = [(ids(s), ids(t)) for s, t in train]
    # Test sorted by length: evaluation chunks then carry little padding (the model cuts trailing padding).
    test_ids = sorted(((ids(s), ids(t)) for s, t in test), key=lambda p: len(p[0]) + len(p[1]))
    length = max(len(s) + len(t) + 1 for s, t in train_ids + test_ids)
    x, y = encode(train_ids, length)
    x_test, y_test = encode(test_ids, length)
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test, "vocab": vocab}


def input_shape(cfg) -> tuple[int, ...]:
    return (_corpus(*_key(cfg))["x"].shape[1],)


def pool_size(cfg) -> int:
    return len(_corpus(*_key(cfg))["x"])


def n_classes(cfg) -> int:
    return len(_corpus(*_key(cfg))["vocab"])


def vocabulary(cfg) -> list[str]:
    """Token of each id, for decoding model outputs."""
    return list(_corpus(*_key(cfg))["vocab"])


def load(cfg):
    c = _corpus(*_key(cfg))
    return Pool(c["x"], c["y"], c["x_test"], c["y_test"], n_classes=len(c["vocab"]))


DATASET = Dataset("parallel_text", load=load, input_shape=input_shape, pool_size=pool_size, n_classes=n_classes,
                  check=check, files=files, rules=RULES)
