"""Text->audio retrieval metrics over a (num_queries, num_clips) score matrix.

Tie convention (used everywhere): the rank of a clip is the number of clips of the
query whose score is >= its own, i.e. 1 + #strictly higher + #OTHER clips with an
equal score, whether those others are relevant or not. A tie never helps, so two
relevant clips tied at the top both get rank 2: neither is in the top 1 (R@1 = 0),
but both are in the top 2 and each sees 2 hits within rank 2 (AP@k = 1 for k >= 2).
A relevant clip tied with non-relevant clips is ranked behind all of them.

Inputs may be numpy arrays or torch tensors (any device, any float dtype); the
computation runs in numpy, vectorised over queries.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "clip_classification_accuracy",
    "average_precisions",
    "map_at_k",
    "map_at_k_dcase",
    "recall_at_k",
    "retrieval_metrics",
]


def _to_numpy(x, *, scores: bool) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu()
        # bfloat16 has no numpy dtype; float64 holds every lower-precision value exactly,
        # so no ties are created or broken by the cast.
        x = (x.double() if scores else x).numpy()
    return np.asarray(x, dtype=np.float64) if scores else np.asarray(x)


def _as_arrays(scores, relevant) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(scores, scores=True)
    rel = _to_numpy(relevant, scores=False)
    if s.ndim != 2 or 0 in s.shape:
        raise ValueError(
            f"scores must be a non-empty (num_queries, num_clips) matrix, got shape {s.shape}"
        )
    if rel.shape != s.shape:
        raise ValueError(f"relevant shape {rel.shape} != scores shape {s.shape}")
    if rel.dtype != np.bool_:
        raise TypeError(f"relevant must be a boolean mask, got dtype {rel.dtype}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN: ranks would be undefined")
    return s, rel


def _check_every_query_has_relevant(rel: np.ndarray) -> None:
    empty = int((~rel.any(axis=1)).sum())
    if empty:
        raise ValueError(
            f"{empty} of {rel.shape[0]} queries have no relevant clip; their metrics are undefined"
        )


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _count_at_or_below(sorted_rows: np.ndarray) -> np.ndarray:
    """For rows sorted ascending: how many entries of the row are <= each entry.

    Equals the index of the last entry of the entry's tie group, plus one, so ties
    resolve to the pessimistic end without comparing all pairs.
    """
    n = sorted_rows.shape[1]
    is_last = np.ones(sorted_rows.shape, dtype=bool)
    is_last[:, :-1] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    last = np.where(is_last, np.arange(n), n)
    return np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1] + 1


def _ranks(s: np.ndarray) -> np.ndarray:
    """Pessimistic 1-based rank of every clip for every query: #clips scoring >= it."""
    # Pessimistic ties: a constant scorer must not look good.
    neg = -s
    order = np.argsort(neg, axis=1, kind="stable")
    ranks = np.empty(s.shape, dtype=np.int64)
    np.put_along_axis(
        ranks, order, _count_at_or_below(np.take_along_axis(neg, order, axis=1)), axis=1
    )
    return ranks


def _recall(ranks: np.ndarray, rel: np.ndarray, k: int) -> float:
    best = np.where(rel, ranks, ranks.shape[1] + 1).min(axis=1)
    return float((best <= k).mean())


def _map(ranks: np.ndarray, rel: np.ndarray, k: int) -> float:
    return float(_aps(ranks, rel, k).mean())


def _aps(ranks: np.ndarray, rel: np.ndarray, k: int) -> np.ndarray:
    n = ranks.shape[1]
    # Relevant ranks first, ascending; the n + 1 padding sorts after (and never ties with) them.
    rel_ranks = np.sort(np.where(rel, ranks, n + 1), axis=1)
    hits = _count_at_or_below(rel_ranks)  # relevant clips at rank <= this one, tied ones included
    num_rel = rel.sum(axis=1)
    counted = (np.arange(n) < num_rel[:, None]) & (rel_ranks <= k)
    precision = np.where(counted, hits / rel_ranks, 0.0)
    return precision.sum(axis=1) / np.minimum(num_rel, k)


def recall_at_k(scores, relevant, k: int) -> float:
    """DCASE R@k: fraction of queries with at least one relevant clip in the top k."""
    _check_k(k)
    s, rel = _as_arrays(scores, relevant)
    _check_every_query_has_relevant(rel)
    return _recall(_ranks(s), rel, k)


def map_at_k(scores, relevant, k: int = 10) -> float:
    """mAP@k for several relevant clips per query.

    AP@k = (1 / min(R, k)) * sum_{i<=k} P@i * rel_i, R = relevant clips of the query;
    min(R, k) keeps a perfect ranking at 1 when R > k. Reduces to the DCASE 1/rank
    when R == 1. Relevant clips tied with each other share the pessimistic rank and
    each gets P@rank = (#relevant with rank <= rank) / rank.
    """
    _check_k(k)
    s, rel = _as_arrays(scores, relevant)
    _check_every_query_has_relevant(rel)
    return _map(_ranks(s), rel, k)


def average_precisions(scores, relevant, k: int = 10) -> np.ndarray:
    """AP@k of every query (map_at_k is their mean): paired comparisons of two rankers need the
    per-query values, not just the means."""
    _check_k(k)
    s, rel = _as_arrays(scores, relevant)
    _check_every_query_has_relevant(rel)
    return _aps(_ranks(s), rel, k)


def map_at_k_dcase(scores, relevant, k: int = 10) -> float:
    """DCASE 2022-2024 Task 6B mAP@k: one relevant clip per query, AP = 1/rank if rank <= k.

    Kept separate from map_at_k so that reported challenge numbers follow the
    protocol literally and fail loudly on data that does not fit it.
    """
    _check_k(k)
    s, rel = _as_arrays(scores, relevant)
    _check_every_query_has_relevant(rel)
    multi = int((rel.sum(axis=1) > 1).sum())
    if multi:
        raise ValueError(
            f"{multi} queries have more than one relevant clip; the DCASE protocol assumes one, use map_at_k"
        )
    rank = _ranks(s)[rel]  # exactly one per query, in query order
    return float(np.where(rank <= k, 1.0 / rank, 0.0).mean())


def retrieval_metrics(scores, relevant, ks=(1, 5, 10), map_k: int = 10) -> dict[str, float]:
    """R@k for each k, mAP@map_k, and mAP@map_k_dcase when the DCASE protocol applies.

    Ranks are computed once and shared, which matters for large evaluation matrices.
    """
    for k in (*ks, map_k):
        _check_k(k)
    s, rel = _as_arrays(scores, relevant)
    _check_every_query_has_relevant(rel)
    ranks = _ranks(s)
    out = {f"R@{k}": _recall(ranks, rel, k) for k in ks}
    out[f"mAP@{map_k}"] = _map(ranks, rel, map_k)
    if (rel.sum(axis=1) == 1).all():
        # With one relevant clip per query map_at_k is exactly the DCASE number.
        out[f"mAP@{map_k}_dcase"] = out[f"mAP@{map_k}"]
    return out


def clip_classification_accuracy(scores, relevant) -> float:
    """Each clip is assigned the query (class caption) that scores it highest; used on
    ESC-50 where queries are class captions.

    Returns the fraction of clips (among those relevant to at least one query) whose
    assigned query is relevant. Ties are pessimistic as for ranks: a clip counts as
    correct only if some relevant query scores it strictly above every non-relevant one.
    """
    s, rel = _as_arrays(scores, relevant)
    labelled = rel.any(axis=0)
    if not labelled.any():
        raise ValueError("no clip is relevant to any query")
    s, rel = s[:, labelled], rel[:, labelled]
    best_rel = np.where(rel, s, -np.inf).max(axis=0)
    best_irr = np.where(rel, -np.inf, s).max(axis=0)
    correct = (best_rel > best_irr) | rel.all(axis=0)
    return float(correct.mean())
