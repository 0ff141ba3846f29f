"""The CartPole scenes: Gymnasium's CartPole-v1 through the Gymnasium adapter, one agent per area.

- ``CartPole``: one float sensor ``VectorSensor`` of 4 floats (cart position, cart velocity, pole angle, pole
  angular velocity), one discrete branch of 2 actions (push left, push right). Reward 1 per step; the pole
  falling or the cart leaving the track ends the episode (done); 500 steps cut it off (done, max_step_reached).
  Its heuristic (:func:`balance_heuristic`) balances the pole (``rayagents-sim record CartPole --heuristic``).
- ``CartPoleMemory``: the same with the velocities hidden (``VectorSensor`` of cart position and pole angle):
  a policy needs memory (``network_settings.memory``) to balance.
- ``CartPoleVisual``: the rendered scene instead of the state: a ``CameraSensor`` of 3 × 40 × 60, the last three
  rendered frames in grayscale (oldest first) as its channels, so motion is visible without memory.

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
            kwargs=(("render_mode", "rgb_array"),),
            wrappers=(partial(RenderedPixels, height=height, width=width, grayscale_frames=VISUAL_FRAMES),),
        ),
        description=f"CartPole-v1 seen as pixels: the last {VISUAL_FRAMES} rendered frames in grayscale, "
        f"{VISUAL_FRAMES}x{height}x{width} PNG; 1 discrete branch of 2.",
    )
