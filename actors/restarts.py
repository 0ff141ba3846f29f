"""``RestartBudget``: how often an EnvActor may restart its player (mlagents-learn's restart limits).

``--max-lifetime-restarts`` bounds the restarts over the whole run (-1: no bound); ``--restarts-rate-limit-n``
restarts within ``--restarts-rate-limit-period-s`` seconds is the most allowed (-1: no rate limit), as in
ML-Agents' ``SubprocessEnvManager``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable


class RestartBudget:
    """Counts a player's restarts and says whether one more is allowed.

    Arguments:
        max_lifetime_restarts: the most restarts over the actor's life; -1 for no bound.
        rate_limit_n: the most restarts within ``rate_limit_period_s``; -1 for no rate limit.
        rate_limit_period_s: the window of the rate limit, in seconds.
        clock: the time source (monotonic seconds).
    """

    def __init__(
        self,
        max_lifetime_restarts: int,
        rate_limit_n: int,
        rate_limit_period_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_lifetime_restarts = max_lifetime_restarts
        self.rate_limit_n = rate_limit_n
        self.rate_limit_period_s = rate_limit_period_s
        self._clock = clock
        self._recent: deque[float] = deque()
        self._total = 0

    @property
    def restarts(self) -> int:
        """Restarts taken so far."""
        return self._total

    def refusal(self) -> str | None:
        """Why one more restart is not allowed now, or None if it is."""
        if 0 <= self.max_lifetime_restarts <= self._total:
            return f"it was restarted {self._total} times already (--max-lifetime-restarts {self.max_lifetime_restarts})"
        if self.rate_limit_n >= 0:
            now = self._clock()
            while self._recent and now - self._recent[0] > self.rate_limit_period_s:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit_n:
                return (
                    f"it was restarted {len(self._recent)} times in the last {self.rate_limit_period_s:g} s "
                    f"(--restarts-rate-limit-n {self.rate_limit_n}, --restarts-rate-limit-period-s "
                    f"{self.rate_limit_period_s:g})"
                )
        return None

    def take(self) -> None:
        """Records one restart."""
        self._total += 1
        self._recent.append(self._clock())
