"""The CartPole scenes: Gymnasium's CartPole-v1 through the Gymnasium adapter, one agent per area.

- ``CartPole``: one float sensor ``VectorSensor`` of 4 floats (cart position, cart velocity, pole angle, pole
  angular velocity), one discrete branch of 2 actions (push left, push right). Reward 1 per step; the pole
  falling or the cart leaving the track ends the episode (done); 500 steps cut it off (done, max_step_reached).
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

from functools import partial

from rayagents.sims.adapters.gymnasium import GymnasiumEnv, gymnasium_scene
from rayagents.sims.adapters.wrappers import RenderedPixels, SelectEntries
from rayagents.sims.scene import Scene

ENV_ID = "CartPole-v1"
"""The Gymnasium id every CartPole scene runs."""
VISIBLE_ENTRIES = (0, 2)
"""The observation entries CartPoleMemory keeps: cart position and pole angle."""
VISUAL_SIZE = (40, 60)
"""CartPoleVisual's image height and width (the 400 × 600 render box-averaged by 10)."""
VISUAL_FRAMES = 3
"""How many grayscale frames CartPoleVisual stacks."""


def scene() -> Scene:
    """The CartPole scene."""
    return gymnasium_scene(
        "CartPole",
        GymnasiumEnv(ENV_ID),
        description="Gymnasium CartPole-v1: balance a pole on a cart (4 floats, 1 discrete branch of 2).",
    )


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
