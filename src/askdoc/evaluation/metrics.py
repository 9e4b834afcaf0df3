"""Pure evaluation metrics: ranking (hit, recall, MRR, nDCG), phrase matching, refusal, latency.

A ranking is described by ``matches``: for each retrieved item, best first, the set of gold
indices (0 .. n_gold-1) it matches. An item matching nothing is relevant to nothing. Each gold
item is credited once: a second passage of an already-found document earns nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Matches = Sequence[frozenset[int]]


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive form used for phrase matching."""
    return " ".join(text.split()).casefold()


def contains_any(text: str, phrases: Iterable[str]) -> bool:
    """True when one of ``phrases`` occurs in ``text`` (ignoring case and whitespace runs)."""
    haystack = normalize(text)
    return any(normalize(p) in haystack for p in phrases if normalize(p))


def first_relevant_rank(matches: Matches) -> int | None:
    """1-based rank of the first item that matches some gold item, or None."""
    for rank, found in enumerate(matches, 1):
        if found:
            return rank
    return None


def hit_at(matches: Matches, k: int) -> float:
    """1.0 when a relevant item is among the first ``k``, else 0.0."""
    rank = first_relevant_rank(matches[:k])
    return 0.0 if rank is None else 1.0


def reciprocal_rank(matches: Matches, k: int = 10) -> float:
    """1 / rank of the first relevant item within the first ``k`` (0.0 when there is none)."""
    rank = first_relevant_rank(matches[:k])
    return 0.0 if rank is None else 1.0 / rank


def recall_at(matches: Matches, n_gold: int, k: int) -> float:
    """Share of the ``n_gold`` gold items matched by the first ``k`` items (0.0 without gold)."""
    if n_gold <= 0:
        return 0.0
    covered: set[int] = set()
    for found in matches[:k]:
        covered |= found
    return len(covered & set(range(n_gold))) / n_gold


def dcg(gains: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of the first ``k`` gains: sum(g_i / log2(i + 1)), i from 1."""
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains[:k], 1))


def binary_gains(matches: Matches) -> list[float]:
    """Gain 1 for an item that matches a gold item not yet credited (all it matches are then
    credited), 0 otherwise: duplicates of a found source earn nothing."""
    credited: set[int] = set()
    gains: list[float] = []
    for found in matches:
        fresh = found - credited
        gains.append(1.0 if fresh else 0.0)
        credited |= found
    return gains


def ndcg_binary(matches: Matches, n_gold: int, k: int = 10) -> float:
    """nDCG@k with binary gains; the ideal ranking puts min(n_gold, k) relevant items first."""
    ideal = dcg([1.0] * min(n_gold, k), k)
    return dcg(binary_gains(matches), k) / ideal if ideal > 0 else 0.0


def ndcg_graded(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded relevance (gain = grade, as in trec_eval/BEIR); a repeated id earns
    nothing the second time; negative grades count as 0."""
    seen: set[str] = set()
    gains: list[float] = []
    for item in ranked:
        gains.append(0.0 if item in seen else float(max(0, grades.get(item, 0))))
        seen.add(item)
    ideal = dcg(sorted((float(g) for g in grades.values() if g > 0), reverse=True), k)
    return dcg(gains, k) / ideal if ideal > 0 else 0.0


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's
    default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def refusal_scores(
    refused: Sequence[bool], unanswerable: Sequence[bool]
) -> tuple[float | None, float | None]:
    """(precision, recall) of refusing, the positive class being "refused".

    precision = refused and unanswerable / refused; recall = refused and unanswerable /
    unanswerable. Each is None when its denominator is 0.
    """
    both = sum(1 for r, u in zip(refused, unanswerable, strict=True) if r and u)
    n_refused = sum(1 for r in refused if r)
    n_unanswerable = sum(1 for u in unanswerable if u)
    precision = both / n_refused if n_refused else None
    recall = both / n_unanswerable if n_unanswerable else None
    return precision, recall
