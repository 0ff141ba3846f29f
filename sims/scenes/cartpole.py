"""The CartPole scenes: Gymnasium's CartPole-v1 through the Gymnasium adapter, one agent per area.

- ``CartPole``: one float sensor ``VectorSensor`` of 4 floats (cart position, cart velocity, pole angle, pole
  angular velocity), one discrete branch of 2 actions (push left, push right). Reward 1 per step; the pole
  falling or the cart leaving the track ends the episode (done); 500 steps cut it off (done, max_step_reached).
  Its heuristic (:func:`balance_heuristic`) balances the pole (``rayagents-sim record CartPole --heuristic``).
- ``CartPoleMemory``: the same with the velocities hidden (``VectorSensor`` of cart position and pole angle):
  a policy needs memory (``network_settings.memory``) to balance.
- ``CartPoleVisual``: the rendered scene instead of the state: a ``CameraSensor`` of 3 × 40 × 60, the last three
  frames in grayscale (oldest first) as its channels, so motion is visible without memory. The frames are drawn
  by :class:`CartPoleDrawing` at 40 × 60 with Gymnasium's geometry (a black silhouette, antialiased so that
  motion of a fraction of a pixel shows), far faster than Gymnasium's own 600 × 400 rendering downscaled.

Each finished episode records ``<Scene>/Episode Return`` and ``<Scene>/Episode Length`` (AVERAGE) on the stats
channel. Environment parameters set CartPole's attributes by name at each episode start: ``length`` (half the
pole's length, 0.5), ``masspole`` (0.1), ``masscart`` (1.0), ``gravity`` (9.8), ``force_mag`` (10.0), ``tau``
(0.02 s per step).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from rayagents.sims.adapters.gymnasium import GymnasiumEnv, gymnasium_scene
from rayagents.sims.adapters.wrappers import RenderedPixels, SelectEntries
from rayagents.sims.scene import AgentAction, AgentReport, Scene

ENV_ID = "CartPole-v1"
"""The Gymnasium id every CartPole scene runs."""
VISIBLE_ENTRIES = (0, 2)
"""The observation entries CartPoleMemory keeps: cart position and pole angle."""
VISUAL_SIZE = (40, 60)
"""CartPoleVisual's image height and width (the 400 × 600 render box-averaged by 10)."""
VISUAL_FRAMES = 3
"""How many grayscale frames CartPoleVisual stacks."""


BALANCE_WEIGHTS = (0.1, 0.5, 3.0, 1.0)
"""The heuristic's weights of cart position, cart velocity, pole angle and pole angular velocity."""


def balance_heuristic(report: AgentReport) -> AgentAction:
    """CartPole's heuristic: push right (1) when the weighted state leans right, else left (0).

    Mostly the pole's angle and angular velocity (push under the falling pole); the small cart terms pull the cart
    back to the middle of the track. It holds the pole for the whole 500 steps from Gymnasium's start states.
    """
    lean = float(np.dot(BALANCE_WEIGHTS, report.observations[0]))
    return AgentAction(np.zeros(0, np.float32), np.array([1 if lean > 0 else 0], np.int32))


SCREEN_WIDTH, SCREEN_HEIGHT = 600.0, 400.0
"""Gymnasium's CartPole screen, whose geometry the drawing follows."""
POLE_WIDTH = 20.0
"""The pole's width on that screen: twice Gymnasium's, so that it is 2 pixels wide at 40 × 60."""


def _coverage(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """How much of a pixel a shape covers, from the signed distance (negative inside) of the pixel's center to the
    shape's edge: 1 inside, 0 outside, linear across one pixel at the edge (analytic antialiasing)."""
    return np.clip(0.5 - signed_distance / pixel, 0.0, 1.0)


class CartPoleDrawing:
    """Draws CartPole's state at ``height × width`` directly, with Gymnasium's geometry: a black cart of 50 × 30 on a
    black track, the pole (black, :data:`POLE_WIDTH` wide, pivoting on the gray axle) on white. Each shape covers
    each pixel by its antialiased share, so a movement of a fraction of a pixel changes the image."""

    def __init__(self, height: int, width: int) -> None:
        self._shape = (height, width)
        self._pixel = SCREEN_WIDTH / width
        x = ((np.arange(width) + 0.5) * SCREEN_WIDTH / width).astype(np.float32)
        y = (SCREEN_HEIGHT - (np.arange(height) + 0.5) * SCREEN_HEIGHT / height).astype(np.float32)  # from the bottom
        self._x, self._y = x[None, :], y[:, None]

    def __call__(self, env: object, height: int, width: int) -> np.ndarray:
        """The RGB frame ``(height, width, 3)`` of ``env`` (an unwrapped Gymnasium CartPoleEnv)."""
        if (height, width) != self._shape:
            raise ValueError(f"this drawing is {self._shape[0]}x{self._shape[1]}, not {height}x{width}")
        state = getattr(env, "state")
        scale = SCREEN_WIDTH / (2 * float(getattr(env, "x_threshold")))
        pole_length = scale * 2 * float(getattr(env, "length"))
        cart_x, cart_y = float(state[0]) * scale + SCREEN_WIDTH / 2, 100.0
        axle_y = cart_y + 30.0 / 4
        x, y, pixel = self._x, self._y, self._pixel
        track = _coverage(np.broadcast_to(np.abs(y - cart_y) - 0.5, (height, width)), pixel)
        cart = _coverage(np.maximum(np.abs(x - cart_x) - 25.0, np.abs(y - cart_y) - 15.0), pixel)
        sine, cosine = np.float32(np.sin(float(state[2]))), np.float32(np.cos(float(state[2])))
        dx, dy = x - np.float32(cart_x), y - np.float32(axle_y)
        along, across = dx * sine + dy * cosine, dx * cosine - dy * sine
        half = POLE_WIDTH / 2
        pole = _coverage(np.maximum(np.abs(across) - half, np.maximum(-half - along, along - (pole_length - half))), pixel)
        axle = _coverage(np.sqrt(dx * dx + dy * dy) - half, pixel)
        frame = np.full((height, width), 255.0, dtype=np.float32)
        for cover, gray in ((track, 0.0), (cart, 0.0), (pole, 0.0), (axle, 128.0)):
            frame += cover * (gray - frame)
        return np.repeat(np.rint(frame).astype(np.uint8)[..., None], 3, axis=2)


def scene() -> Scene:
    """The CartPole scene."""
    built = gymnasium_scene(
        "CartPole",
        GymnasiumEnv(ENV_ID),
        description="Gymnasium CartPole-v1: balance a pole on a cart (4 floats, 1 discrete branch of 2).",
    )
    return replace(built, heuristic=balance_heuristic)


def cartpole_memory() -> Scene:
    """The CartPoleMemory scene: CartPole without velocities."""
    return gymnasium_scene(
        "CartPoleMemory",
        GymnasiumEnv(ENV_ID, wrappers=(partial(SelectEntries, indices=VISIBLE_ENTRIES),)),
        description="CartPole-v1 with the velocities hidden (2 floats: cart position, pole angle); needs memory.",
    )


def cartpole_visual() -> Scene:
    """The CartPoleVisual scene: CartPole seen through rendered pixels."""
    height, width = VISUAL_SIZE
    return gymnasium_scene(
        "CartPoleVisual",
        GymnasiumEnv(
            ENV_ID,
            wrappers=(
                partial(
                    RenderedPixels,
                    height=height,
                    width=width,
                    grayscale_frames=VISUAL_FRAMES,
                    draw=CartPoleDrawing(height, width),
                ),
            ),
        ),
        description=f"CartPole-v1 seen as pixels: the last {VISUAL_FRAMES} drawn frames in grayscale, "
        f"{VISUAL_FRAMES}x{height}x{width} PNG; 1 discrete branch of 2.",
    )
