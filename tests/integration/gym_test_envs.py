"""Small Gymnasium environments for the adapter's tests, registered on import.

The simulation host imports this module in the player process through a ``gym:gym_test_envs:<id>`` scene name
(the test puts this folder on ``PYTHONPATH``).

``Echo-v0`` has a hybrid action space and a nested observation space, and shows in its observation what it
received, so a test can check what reached the environment:

- actions: ``Tuple(Box([-3, 10], [5, 20]), Discrete(3, start=1), MultiDiscrete([2, 4]))``;
- observations: ``Dict`` with ``echo`` (the last action as 5 floats: the box's two values, the discrete value,
  the two multi-discrete values), ``alpha`` (``Discrete(4)``: the step count modulo 4), ``Beta``
  (``Tuple(Box(2): [step count, episode count], MultiBinary(2))``);
- reward: ``step count`` (1, 2, 3, ...); ``terminated`` when the step count reaches the attribute
  ``terminate_at`` (an environment parameter can change it); truncated by ``max_episode_steps`` (registered 6).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

ECHO_ID = "Echo-v0"
"""The id ``Echo`` registers."""
ECHO_MAX_STEPS = 6
"""Echo's registered time limit."""
BOX_LOW = np.array([-3.0, 10.0], dtype=np.float32)
"""The lower bounds of Echo's continuous actions."""
BOX_HIGH = np.array([5.0, 20.0], dtype=np.float32)
"""The upper bounds of Echo's continuous actions."""


class Echo(gymnasium.Env):
    """Echoes its actions in its observations (see the module docstring)."""

    def __init__(self, terminate_at: int = 4) -> None:
        self.terminate_at = terminate_at
        """The step count at which an episode terminates."""
        self.action_space = spaces.Tuple(
            (
                spaces.Box(BOX_LOW, BOX_HIGH, dtype=np.float32),
                spaces.Discrete(3, start=1),
                spaces.MultiDiscrete([2, 4]),
            )
        )
        self.observation_space = spaces.Dict(
            {
                "echo": spaces.Box(-100.0, 100.0, (5,), np.float32),
                "alpha": spaces.Discrete(4),
                "Beta": spaces.Tuple((spaces.Box(0.0, 1000.0, (2,), np.float32), spaces.MultiBinary(2))),
            }
        )
        self._steps = 0
        self._episodes = 0
        self._echo = np.zeros(5, np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._steps = 0
        self._episodes += 1
        self._echo = np.zeros(5, np.float32)
        return self._observation(), {}

    def step(self, action: tuple) -> tuple[dict, float, bool, bool, dict]:
        box, choice, multi = action
        assert box.dtype == np.float32 and box.shape == (2,)
        self._echo = np.array([box[0], box[1], choice, multi[0], multi[1]], np.float32)
        self._steps += 1
        return self._observation(), float(self._steps), self._steps >= self.terminate_at, False, {}

    def _observation(self) -> dict:
        return {
            "echo": self._echo.copy(),
            "alpha": self._steps % 4,
            "Beta": (np.array([self._steps, self._episodes], np.float32), np.array([1, 0], np.int8)),
        }


gymnasium.register(ECHO_ID, entry_point=Echo, max_episode_steps=ECHO_MAX_STEPS)
