"""The in-order, bounded-concurrency fetch loop and its batch writer: where a run stops, and what it has written."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lib.game_platform.errors import GamePlatformUnavailable
from lib.game_platform.fetching import (
    REFUSAL_THRESHOLD,
    Budget,
    BudgetSpent,
    Drain,
    DrainEnd,
    EveryoneRefused,
    Outcome,
    VendorOutage,
    fetch_in_order,
)


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def allow(n):
    """A keep_going() that says yes n times, then no."""
    calls = iter(range(n + 1))
    return lambda: next(calls, n) < n


def test_results_come_in_input_order_with_bounded_concurrency(pool):
    running = 0
    peak = 0
    lock = threading.Lock()

    def fetch(i):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01 * (i % 3))
        with lock:
            running -= 1
        return i * 10

    results = list(fetch_in_order(pool, iter(range(30)), fetch, window=3, keep_going=lambda: True))
    assert results == [(i, i * 10) for i in range(30)]
    assert peak <= 3


def test_no_time_and_items_left_is_budget_spent_not_exhaustion(pool):
    fetched = []
    results = fetch_in_order(pool, iter(range(5)), fetched.append, window=4, keep_going=lambda: False)
    with pytest.raises(BudgetSpent):
        list(results)
    assert fetched == []


def test_no_time_and_no_items_is_exhaustion(pool):
    assert list(fetch_in_order(pool, iter([]), lambda i: i, window=4, keep_going=lambda: False)) == []


def test_started_fetches_are_yielded_before_budget_spent(pool):
    seen = []
    results = fetch_in_order(pool, iter(range(10)), lambda i: i, window=2, keep_going=allow(3))
    seen += [item for item, _ in (next(results), next(results), next(results))]
    with pytest.raises(BudgetSpent):
        next(results)
    assert seen == [0, 1, 2]


def test_budget_running_out_after_the_last_item_is_exhaustion(pool):
    results = list(fetch_in_order(pool, iter(range(3)), lambda i: i, window=8, keep_going=allow(3)))
    assert [item for item, _ in results] == [0, 1, 2]


def _drain(flushed, *, batch_size=3, threshold=3, answered=False):
    def classify(result):
        if result == "deferred":
            return Outcome.DEFERRED
        if result == "down":
            return Outcome.UNAVAILABLE
        if result == "403":
            return Outcome.REFUSED
        return Outcome.DONE

    return Drain(
        classify=classify,
        flush=lambda batch: flushed.append([item for item, _ in batch]),
        batch_size=batch_size,
        outage_threshold=threshold,
        error_of=lambda result: GamePlatformUnavailable("503") if result == "down" else None,
        answered=answered,
    )


def test_a_spent_budget_writes_what_was_fetched_and_asks_for_a_continuation(pool):
    flushed = []
    results = fetch_in_order(pool, iter(range(10)), lambda i: "ok", window=2, keep_going=allow(5))
    assert _drain(flushed).run(results) is DrainEnd.OUT_OF_TIME
    assert flushed == [[0, 1, 2], [3, 4]]


def test_every_item_written_once_in_batches_when_time_suffices(pool):
    flushed = []
    results = fetch_in_order(pool, iter(range(7)), lambda i: "ok", window=2, keep_going=lambda: True)
    assert _drain(flushed).run(results) is DrainEnd.EXHAUSTED
    assert flushed == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_call_cut_by_the_budget_stops_the_run_before_it(pool):
    flushed = []
    answers = ["ok", "ok", "deferred", "ok"]
    results = fetch_in_order(pool, iter(range(4)), answers.__getitem__, window=4, keep_going=lambda: True)
    assert _drain(flushed, batch_size=10).run(results) is DrainEnd.OUT_OF_TIME
    assert flushed == [[0, 1]]


def test_an_outage_writes_the_items_before_it_and_none_of_its_own(pool):
    flushed = []
    answers = ["ok", "down", "ok", "down", "down", "down", "ok"]
    results = fetch_in_order(pool, iter(range(7)), answers.__getitem__, window=4, keep_going=lambda: True)
    with pytest.raises(VendorOutage, match="failed 3 calls in a row") as caught:
        _drain(flushed, batch_size=10).run(results)
    assert isinstance(caught.value.last_error, GamePlatformUnavailable)
    assert flushed == [[0, 1, 2]], "a short streak is written as failures; the outage's items are not"


def test_a_batch_is_not_cut_inside_a_streak_of_failures(pool):
    flushed = []
    answers = ["ok", "ok", "down", "down", "ok", "ok"]
    results = fetch_in_order(pool, iter(range(6)), answers.__getitem__, window=4, keep_going=lambda: True)
    assert _drain(flushed, batch_size=2, threshold=3).run(results) is DrainEnd.EXHAUSTED
    assert flushed == [[0, 1], [2, 3, 4], [5]]


def _run(answers, flushed=None, **options):
    flushed = [] if flushed is None else flushed
    with ThreadPoolExecutor(max_workers=2) as pool:
        items = iter(range(len(answers)))
        results = fetch_in_order(pool, items, answers.__getitem__, window=2, keep_going=lambda: True)
        end = _drain(flushed, **options).run(results)
    return end, flushed


def test_refusals_after_an_answer_are_the_users_own():
    end, flushed = _run(["ok"] + ["403"] * (REFUSAL_THRESHOLD + 2), batch_size=100)
    assert end is DrainEnd.EXHAUSTED
    assert flushed == [list(range(REFUSAL_THRESHOLD + 3))]


def test_refusals_before_the_first_answer_are_held_until_one_comes():
    end, flushed = _run(["403", "403", "ok", "403"], batch_size=2)
    assert end is DrainEnd.EXHAUSTED
    assert flushed == [[0, 1, 2], [3]], "the held refusals are written with the batch of the first answer"


def test_the_first_ten_refused_with_no_answer_is_a_configuration_error_and_writes_nothing():
    flushed = []
    with pytest.raises(EveryoneRefused, match=f"all {REFUSAL_THRESHOLD} users.*GAME_PLATFORM_API_TOKEN"):
        _run(["403"] * (REFUSAL_THRESHOLD + 5) + ["ok"], flushed, batch_size=3)
    assert flushed == []


def test_a_small_run_refused_to_the_last_user_is_a_configuration_error_too():
    flushed = []
    with pytest.raises(EveryoneRefused, match="all 3 users"):
        _run(["403", "403", "403"], flushed, batch_size=2)
    assert flushed == []


def test_a_continuation_of_a_run_that_had_answers_takes_refusals_as_the_users():
    end, flushed = _run(["403"] * (REFUSAL_THRESHOLD + 1), batch_size=100, answered=True)
    assert end is DrainEnd.EXHAUSTED
    assert flushed == [list(range(REFUSAL_THRESHOLD + 1))]


def test_out_of_time_with_only_refusals_leaves_them_for_the_continuation(pool):
    flushed = []
    answers = ["403", "403", "deferred"]
    results = fetch_in_order(pool, iter(range(3)), answers.__getitem__, window=3, keep_going=lambda: True)
    assert _drain(flushed, batch_size=10).run(results) is DrainEnd.OUT_OF_TIME
    assert flushed == [], "the continuation asks them again and decides"


@pytest.mark.parametrize(("budget", "reserve"), [(285.0, 5.0), (20.0, 2.0), (1.0, 0.5), (0.2, 0.5)])
def test_the_budget_keeps_a_tenth_back_between_half_a_second_and_five(budget, reserve):
    now = 1000.0
    assert Budget.until(now + budget, clock=lambda: now).call_deadline == pytest.approx(now + budget - reserve)
