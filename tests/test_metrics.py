"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import pytest

from askdoc.evaluation import metrics

F = frozenset
NONE: frozenset[int] = frozenset()
L3 = math.log2(3)  # discount of rank 2


@pytest.mark.parametrize(
    ("text", "phrases", "expected"),
    [
        ("Signed on June  19, 2024.", ["june 19"], True),
        ("Signed on June\n19.", ["JUNE 19"], True),
        ("Signed in July.", ["June 19", "in july"], True),
        ("Signed in July.", ["June"], False),
        ("anything", [], False),
        ("anything", ["   "], False),
        ("", ["x"], False),
    ],
)
def test_contains_any(text: str, phrases: list[str], expected: bool) -> None:
    assert metrics.contains_any(text, phrases) is expected


@pytest.mark.parametrize(
    ("matches", "rank"),
    [([], None), ([NONE, NONE], None), ([NONE, F({0})], 2), ([F({1}), F({0})], 1)],
)
def test_first_relevant_rank(matches: list[frozenset[int]], rank: int | None) -> None:
    assert metrics.first_relevant_rank(matches) == rank


def test_hit_and_reciprocal_rank() -> None:
    ranking = [NONE, NONE, F({0}), NONE, F({1})]
    assert [metrics.hit_at(ranking, k) for k in (1, 2, 3, 5, 10)] == [0, 0, 1, 1, 1]
    assert metrics.reciprocal_rank(ranking) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(ranking, k=2) == 0.0
    assert metrics.hit_at([NONE] * 12, 10) == 0.0
    assert metrics.reciprocal_rank([NONE] * 10 + [F({0})], 10) == 0.0  # rank 11 is beyond @10
    assert metrics.reciprocal_rank([], 10) == 0.0


def test_recall_counts_each_gold_source_once() -> None:
    ranking = [F({0}), F({0}), F({1}), NONE]
    assert metrics.recall_at(ranking, 3, 1) == pytest.approx(1 / 3)
    assert metrics.recall_at(ranking, 3, 2) == pytest.approx(1 / 3)  # duplicate of gold 0
    assert metrics.recall_at(ranking, 3, 10) == pytest.approx(2 / 3)
    assert metrics.recall_at([F({0, 1})], 2, 1) == 1.0  # one passage holding both lines
    assert metrics.recall_at([NONE, NONE], 2, 10) == 0.0
    assert metrics.recall_at([F({0})], 0, 10) == 0.0  # no gold: nothing to recall


def test_binary_gains_ignore_duplicates() -> None:
    assert metrics.binary_gains([F({0}), F({0}), NONE, F({0, 1}), F({1})]) == [1, 0, 0, 1, 0]


def test_ndcg_binary_by_hand() -> None:
    # gains 1, 0 (duplicate), 1 -> 1 + 1/log2(4); ideal for 2 gold: 1 + 1/log2(3)
    value = metrics.ndcg_binary([F({0}), F({0}), F({1})], 2)
    assert value == pytest.approx((1 + 0.5) / (1 + 1 / L3))
    assert metrics.ndcg_binary([F({0})], 1) == 1.0
    assert metrics.ndcg_binary([NONE, F({0})], 1) == pytest.approx(1 / L3)
    assert metrics.ndcg_binary([NONE] * 5, 2) == 0.0  # no hits
    assert metrics.ndcg_binary([F({0})], 0) == 0.0  # empty gold
    # only the first k positions count; more gold than k caps the ideal at k ones
    assert metrics.ndcg_binary([NONE, F({0})], 1, k=1) == 0.0
    assert metrics.ndcg_binary([F({i}) for i in range(3)], 5, k=3) == pytest.approx(1.0)


def test_ndcg_graded_by_hand() -> None:
    grades = {"d1": 1, "d2": 2, "d3": 0, "d4": 2}
    # gains 1, 2, 0 -> 1 + 2/log2(3); ideal 2, 2, 1 -> 2 + 2/log2(3) + 1/2
    expected = (1 + 2 / L3) / (2 + 2 / L3 + 0.5)
    assert metrics.ndcg_graded(["d1", "d2", "d3"], grades) == pytest.approx(expected)
    assert metrics.ndcg_graded(["d2", "d4", "d1"], grades) == pytest.approx(1.0)
    assert metrics.ndcg_graded(["d4", "d2", "d1"], grades) == pytest.approx(1.0)  # tie in grade
    # a repeated document earns nothing the second time
    assert metrics.ndcg_graded(["d2", "d2"], {"d2": 2, "d4": 2}) == pytest.approx(2 / (2 + 2 / L3))
    assert metrics.ndcg_graded(["x", "y"], grades) == 0.0
    assert metrics.ndcg_graded(["d3"], {"d3": 0}) == 0.0  # nothing relevant: 0, not a crash
    assert metrics.ndcg_graded(["d1"], {"d1": -1, "d2": 1}) == 0.0  # negative grade is 0
    assert metrics.ndcg_graded(["x", "d1"], {"d1": 1}, k=1) == 0.0


def test_mean_skips_none() -> None:
    assert metrics.mean([1.0, None, 0.0, True]) == pytest.approx(2 / 3)
    assert metrics.mean([None, None]) is None
    assert metrics.mean([]) is None


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 95, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 95, 3.85),  # (n-1)*0.95 = 2.85: 3 + 0.85 * (4 - 3)
        ([5.0, 5.0, 5.0], 50, 5.0),  # ties
        ([1.0, 5.0, 5.0, 9.0], 0, 1.0),
        ([1.0, 5.0, 5.0, 9.0], 100, 9.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    result = metrics.percentile(values, q)
    assert result == (None if expected is None else pytest.approx(expected))


def test_refusal_scores() -> None:
    refused = [True, True, False, False, True]
    unanswerable = [True, False, True, False, True]
    precision, recall = metrics.refusal_scores(refused, unanswerable)
    assert precision == pytest.approx(2 / 3)  # 2 of 3 refusals were right
    assert recall == pytest.approx(2 / 3)  # 2 of 3 unanswerable questions refused
    assert metrics.refusal_scores([False, False], [True, False]) == (None, 0.0)
    assert metrics.refusal_scores([True, False], [False, False]) == (0.0, None)
    assert metrics.refusal_scores([], []) == (None, None)
