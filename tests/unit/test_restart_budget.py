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
    budget = RestartBudget(max_lifetime_restarts=-1, rate_limit_n=-1, rate_limit_period_s=60)
    for _ in range(100):
        budget.take()
    assert budget.refusal() is None


def test_zero_restarts_allowed_refuses_the_first() -> None:
    budget = RestartBudget(max_lifetime_restarts=0, rate_limit_n=1, rate_limit_period_s=60)
    assert budget.refusal() is not None
