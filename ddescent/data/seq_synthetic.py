"""A small synthetic translation task, generated locally from a seed: Fig 9.11 on a CPU.

Source sentences are subject, verb, object and an optional adverb; a noun phrase is a determiner, up to
`max_adjectives` distinct adjectives and a noun marked singular or plural:

    source:  DET ADJ_1 .. ADJ_k NOUN.num   VERB   DET ADJ .. NOUN.num   [ADV]
    target:  DET'.gen.num NOUN'.num ADJ_k'.num .. ADJ_1'.num   DET' NOUN' ADJ' ..   [ADV']   VERB'.num(subject)

Every word is substituted by its own target word, and three deterministic rules make it more than a lookup:
local reordering (adjectives follow the noun, mirrored), a verb-final clause, and agreement (target
determiners carry the noun's gender, a fixed lexical property drawn from the seed, and its number;
adjectives carry the noun's number; the verb carries the subject's number across the object phrase). With
`noise` > 0 each target word (not EOS) is, with that probability, replaced by a random target word, in the
training pool and the test set alike: irreducible noise, as the variability of real translations. This is
the noise that fig9_11_transformer uses; label noise on training targets only is the shared `label_noise`.
(Clean, the default sizes are learnt from a few hundred pairs: 2.9% test token error at n_train = 250.)

Ids: the four specials of `ddescent.data.parallel_text` (PAD, UNK, SEP, EOS), then source words, then target
words, in one vocabulary; the layout of a sample is the one of `parallel_text.encode`. Lexicon, training pool
and test set come from separate streams of `generator_seed`, so resizing one leaves the others unchanged.
"""

from __future__ import annotations

import functools

import numpy as np

from ddescent.checks import NONNEG_INT, POSITIVE_INT, RATE, ConfigError
from ddescent.data.base import Dataset, Pool
from ddescent.data.parallel_text import SPECIALS, encode

RULES = {
    **{f"data.{k}": POSITIVE_INT for k in ("determiners", "adjectives", "nouns", "verbs", "adverbs", "pool_size",
                                           "test_size")},
    "data.max_adjectives": NONNEG_INT,
    "data.noise": RATE,
    "data.generator_seed": NONNEG_INT,
}

SG, PL = 0, 1
N_GENDERS = 2

SIZE_KEYS = ("determiners", "adjectives", "nouns", "verbs", "adverbs")


class Lexicon:
    """Token ids of every word form, and the target genders of the nouns."""

    def __init__(self, determiners: int, adjectives: int, nouns: int, verbs: int, adverbs: int,
                 rng: np.random.Generator | None = None):
        self.sizes = (determiners, adjectives, nouns, verbs, adverbs)
        next_id = len(SPECIALS)

        def block(*shape):
            nonlocal next_id
            ids = np.arange(next_id, next_id + int(np.prod(shape))).reshape(shape)
            next_id += ids.size
            return ids

        self.det_s, self.adj_s, self.noun_s = block(determiners), block(adjectives), block(nouns, 2)
        self.verb_s, self.adv_s = block(verbs), block(adverbs)
        self.det_t, self.adj_t = block(determiners, N_GENDERS, 2), block(adjectives, 2)
        self.noun_t, self.verb_t, self.adv_t = block(nouns, 2), block(verbs, 2), block(adverbs)
        self.first_target, self.size = int(self.det_t.min()), next_id
        rng = rng if rng is not None else np.random.default_rng(0)
        self.gender = rng.integers(0, N_GENDERS, size=nouns)


def vocab_size(sizes: tuple[int, ...]) -> int:
    d, a, n, v, r = sizes
    return len(SPECIALS) + (d + a + 2 * n + v + r) + (d * N_GENDERS * 2 + 2 * a + 2 * n + 2 * v + r)


def max_lengths(max_adjectives: int) -> tuple[int, int]:
    """Longest source and target (without EOS): two noun phrases, a verb and an adverb."""
    words = 2 * (2 + max_adjectives) + 2
    return words, words


def sentence(lex: Lexicon, rng: np.random.Generator, max_adjectives: int) -> tuple[list[int], list[int]]:
    """One (source, target) pair of ids."""
    n_det, n_adj, _, n_verb, n_adv = lex.sizes

    def noun_phrase():
        det, noun, num = rng.integers(n_det), rng.integers(len(lex.gender)), rng.integers(2)
        adjs = rng.choice(n_adj, size=rng.integers(0, max_adjectives + 1), replace=False)
        src = [lex.det_s[det], *lex.adj_s[adjs], lex.noun_s[noun, num]]
        tgt = [lex.det_t[det, lex.gender[noun], num], lex.noun_t[noun, num], *lex.adj_t[adjs[::-1], num]]
        return src, tgt, num

    subj_s, subj_t, subj_num = noun_phrase()
    verb = rng.integers(n_verb)
    obj_s, obj_t, _ = noun_phrase()
    adv = [rng.integers(n_adv)] if rng.random() < 0.5 else []
    src = [*subj_s, lex.verb_s[verb], *obj_s, *lex.adv_s[adv]]
    tgt = [*subj_t, *obj_t, *lex.adv_t[adv], lex.verb_t[verb, subj_num]]
    return [int(i) for i in src], [int(i) for i in tgt]


def generate(sizes: tuple[int, ...], max_adjectives: int, n: int, seed: int, stream: int,
             noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of n pairs from stream `stream` of `seed` (1: training pool, 2: test set)."""
    lex = Lexicon(*sizes, rng=np.random.default_rng([seed, 0]))
    rng = np.random.default_rng([seed, stream])
    pairs = [sentence(lex, rng, max_adjectives) for _ in range(n)]
    if noise > 0:
        for _, tgt in pairs:
            hit = rng.random(len(tgt)) < noise
            tgt[:] = np.where(hit, rng.integers(lex.first_target, lex.size, len(tgt)), tgt).tolist()
    src_len, tgt_len = max_lengths(max_adjectives)
    return encode(pairs, src_len + 1 + tgt_len)


def _sizes(cfg) -> tuple[int, ...]:
    return tuple(int(cfg[k]) for k in SIZE_KEYS)


def n_classes(cfg) -> int:
    return vocab_size(_sizes(cfg))


def input_shape(cfg) -> tuple[int, ...]:
    src_len, tgt_len = max_lengths(int(cfg.max_adjectives))
    return (src_len + 1 + tgt_len,)


def pool_size(cfg) -> int:
    return int(cfg.pool_size)


def check(cfg) -> None:
    if int(cfg.max_adjectives) > int(cfg.adjectives):
        raise ConfigError(f"data.max_adjectives={cfg.max_adjectives}: a phrase's adjectives are distinct; "
                          f"choose at most data.adjectives={cfg.adjectives}")


@functools.lru_cache(maxsize=4)
def _make(sizes: tuple[int, ...], max_adjectives: int, pool: int, test: int, seed: int, noise: float):
    x, y = generate(sizes, max_adjectives, pool, seed, 1, noise)
    x_test, y_test = generate(sizes, max_adjectives, test, seed, 2, noise)
    return x, y, x_test, y_test


def load(cfg):
    x, y, x_test, y_test = _make(_sizes(cfg), int(cfg.max_adjectives), int(cfg.pool_size), int(cfg.test_size),
                                 int(cfg.generator_seed), float(cfg.noise))
    return Pool(x, y, x_test, y_test, n_classes=n_classes(cfg))


DATASET = Dataset("seq_synthetic", load=load, input_shape=input_shape, pool_size=pool_size, n_classes=n_classes,
                  check=check, rules=RULES)
