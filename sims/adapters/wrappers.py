"""Gymnasium wrappers the named scenes use: hide observation entries, observe rendered pixels."""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Sequence, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import spaces
from PIL import Image


class SelectEntries(gymnasium.ObservationWrapper):
    """Keeps only the entries ``indices`` of a rank-1 Box observation (e.g. CartPole without its velocities)."""

    def __init__(self, env: gymnasium.Env, indices: Sequence[int]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"SelectEntries needs a rank-1 Box observation space, got {space!r}")
        self._indices = np.asarray(indices, dtype=np.intp)
        self.observation_space = spaces.Box(
            low=space.low[self._indices], high=space.high[self._indices], dtype=space.dtype
        )

    def observation(self, observation: Any) -> np.ndarray:
        """The kept entries."""
        return np.asarray(observation)[self._indices]


class RenderedPixels(gymnasium.Wrapper):
    """Observes the environment's rendered frame (``render_mode="rgb_array"``), downscaled to ``height × width``.

    With ``grayscale_frames = n > 0`` the observation is the last ``n`` frames in grayscale, oldest first, as
    the channels of one ``(height, width, n)`` image (motion becomes visible to a network without memory); the
    first observation of an episode repeats its frame. Otherwise it is the current RGB frame,
    ``(height, width, 3)``. Frames whose size is a multiple of the target are box-averaged (``Image.reduce``),
    others resized with a box filter (before the grayscale conversion). The cost is mostly the environment's own
    rendering (CartPole: about 4 ms a frame, pygame drawing and copying a 600x400 frame).

    ``draw``, when given, draws the frame instead of the environment's renderer: it takes the unwrapped
    environment and the target height and width and returns an RGB ``(height, width, 3)`` frame (a scene that
    rasterizes its own state at the target size, hundreds of times faster than rendering and downscaling).
    """

    def __init__(
        self,
        env: gymnasium.Env,
        height: int,
        width: int,
        *,
        grayscale_frames: int = 0,
        draw: Callable[[Any, int, int], np.ndarray] | None = None,
    ) -> None:
        self._draw = draw
        if draw is None and env.render_mode != "rgb_array":
            raise ValueError(
                f"RenderedPixels needs an environment made with render_mode='rgb_array', got {env.render_mode!r}"
            )
        # Rendering off-screen: no window, no sound device, no greeting on stdout.
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        super().__init__(env)
        self._size = (int(width), int(height))
        self._gray = int(grayscale_frames)
        channels = self._gray if self._gray > 0 else 3
        self.observation_space = spaces.Box(0, 255, (int(height), int(width), channels), np.uint8)
        self._frames: deque[np.ndarray] = deque(maxlen=max(self._gray, 1))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset and observe the first frame."""
        _, info = self.env.reset(seed=seed, options=options)
        frame = self._frame()
        self._frames.clear()
        for _ in range(self._frames.maxlen or 1):
            self._frames.append(frame)
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        """Step and observe the new frame."""
        _, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(self._frame())
        return self._observation(), reward, terminated, truncated, info

    def _frame(self) -> np.ndarray:
        """The rendered frame, downscaled (and in grayscale when stacking)."""
        width, height = self._size
        if self._draw is not None:
            drawn = np.asarray(self._draw(self.env.unwrapped, height, width), dtype=np.uint8)
            if self._gray:
                return np.asarray(Image.fromarray(drawn).convert("L"), dtype=np.uint8)
            return drawn
        rendered = self.env.render()
        if rendered is None:
            raise RuntimeError("the environment rendered nothing: make it with render_mode='rgb_array'")
        image = Image.fromarray(np.asarray(rendered, dtype=np.uint8))
        if image.width % width == 0 and image.height % height == 0:
            image = image.reduce((image.width // width, image.height // height))
        else:
            image = image.resize((width, height), Image.Resampling.BOX)
        if self._gray:
            image = image.convert("L")
        return np.asarray(image, dtype=np.uint8)

    def _observation(self) -> np.ndarray:
        """The observation: the stacked grayscale frames, or the current RGB frame."""
        if self._gray:
            return np.stack(self._frames, axis=-1)
        return self._frames[-1]
