"""The player restart limits: --max-lifetime-restarts and the rate limit over --restarts-rate-limit-period-s."""

from __future__ import annotations

from rayagents.actors.restarts import RestartBudget


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lifetime_bound_refuses_once_it_is_spent() -> None:
    budget = RestartBudget(max_lifetime_restarts=2, rate_limit_n=-1, rate_limit_period_s=60)
    for _ in range(2):
        assert budget.refusal() is None
        budget.take()
    refusal = budget.refusal()
    assert refusal is not None and "--max-lifetime-restarts 2" in refusal
    assert budget.restarts == 2


def test_the_rate_limit_counts_only_the_restarts_in_its_window() -> None:
    clock = Clock()
    budget = RestartBudget(max_lifetime_restarts=-1, rate_limit_n=1, rate_limit_period_s=60, clock=clock)
    budget.take()
    clock.now += 30
    refusal = budget.refusal()
    assert refusal is not None and "--restarts-rate-limit-n 1" in refusal
    clock.now += 31
    assert budget.refusal() is None


def test_minus_one_means_no_bound() -> None:
    clock = Clock()
    budget = RestartBudget(max_lifetime_restarts=-1, rate_limit_n=-1, rate_limit_period_s=60, clock=clock)
    for _ in range(100):
        assert budget.refusal() is None
        budget.take()  # 100 restarts at the same instant: neither bound applies
    assert budget.refusal() is None
    assert budget.restarts == 100


def test_zero_restarts_allowed_refuses_the_first() -> None:
    budget = RestartBudget(max_lifetime_restarts=0, rate_limit_n=1, rate_limit_period_s=60)
    assert budget.refusal() == "it was restarted 0 times already (--max-lifetime-restarts 0)"
    assert budget.restarts == 0


def test_a_rate_limit_of_zero_refuses_the_first_restart_at_any_time() -> None:
    clock = Clock()
    budget = RestartBudget(max_lifetime_restarts=-1, rate_limit_n=0, rate_limit_period_s=60, clock=clock)
    expected = (
        "it was restarted 0 times in the last 60 s (--restarts-rate-limit-n 0, --restarts-rate-limit-period-s 60)"
    )
    assert budget.refusal() == expected
    clock.now += 1000
    assert budget.refusal() == expected


def test_the_lifetime_bound_is_not_reset_by_time() -> None:
    clock = Clock()
    budget = RestartBudget(max_lifetime_restarts=1, rate_limit_n=5, rate_limit_period_s=10, clock=clock)
    assert budget.refusal() is None
    budget.take()
    clock.now += 3600  # the rate window forgot the restart long ago; the lifetime bound does not
    assert budget.refusal() == "it was restarted 1 times already (--max-lifetime-restarts 1)"


def test_the_rate_window_counts_each_restart_until_it_is_older_than_the_period() -> None:
    clock = Clock()
    budget = RestartBudget(max_lifetime_restarts=-1, rate_limit_n=2, rate_limit_period_s=60, clock=clock)
    budget.take()  # at 100
    clock.now += 40
    assert budget.refusal() is None  # 1 restart in the window, 2 allowed
    budget.take()  # at 140
    clock.now += 10
    refusal = budget.refusal()
    assert refusal is not None and "restarted 2 times in the last 60 s" in refusal
    clock.now = 161  # the first restart (at 100) is now 61 s old: out of the window; the second is still in
    assert budget.refusal() is None
    budget.take()  # at 161
    assert budget.refusal() is not None  # 140 and 161 in the window
    assert budget.restarts == 3
