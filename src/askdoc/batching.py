"""Embedding batches: texts split into batches of similar length, at the least padded work."""

from __future__ import annotations

BATCH_OVERHEAD_TOKENS = 32
"""The fixed cost of one forward pass, in word-pieces of work: ~9 ms for an empty batch vs
~0.28 ms per padded word-piece on this CPU (one thread). Used to size batches."""


def split_by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of texts of the given lengths (word-pieces) in batches of at most ``batch_size``,
    longest first.

    A batch costs one fixed overhead (``BATCH_OVERHEAD_TOKENS``) plus its size times its longest
    text (shorter texts are padded to it). Over the texts sorted by length, the split minimizing
    that cost is found exactly (dynamic programming, O(n * batch_size)).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    longest = [lengths[i] for i in order]
    size = max(1, batch_size)
    cost = [0] * (len(order) + 1)  # cost[j]: cheapest split of the first j texts
    cut = [0] * (len(order) + 1)  # where the last batch of that split starts
    for j in range(1, len(order) + 1):
        best = -1
        for k in range(max(0, j - size), j):
            value = cost[k] + BATCH_OVERHEAD_TOKENS + (j - k) * longest[k]
            if best < 0 or value < best:
                best, cut[j] = value, k
        cost[j] = best
    batches: list[list[int]] = []
    j = len(order)
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]
