"""CartPoleVisual's frames: CartPole's state drawn at 40 × 60 where Gymnasium's renderer puts it, with motion of a
fraction of a pixel visible."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from PIL import Image

from rayagents.sims.scenes.cartpole import CartPoleDrawing


def drawn(x: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The drawing (gray, 40 × 60) and Gymnasium's rendering box-averaged to 40 × 60 (gray) of one state."""
    env = gymnasium.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    env.unwrapped.state = np.array([x, 0.0, angle, 0.0])
    frame = CartPoleDrawing(40, 60)(env.unwrapped, 40, 60)
    rendered = np.asarray(Image.fromarray(env.render()).reduce((10, 10)).convert("L"), dtype=np.float64)
    env.close()
    assert frame.shape == (40, 60, 3) and frame.dtype == np.uint8
    return frame[..., 0].astype(np.float64), rendered


def darkness_center(image: np.ndarray) -> tuple[float, float]:
    """The (row, column) centroid of the image's darkness."""
    dark = 255.0 - image
    rows, columns = np.indices(image.shape)
    return float((dark * rows).sum() / dark.sum()), float((dark * columns).sum() / dark.sum())


def cart_column(image: np.ndarray) -> float:
    """The column centroid of the cart: the dark pixels (< 128) of the rows below the pole's pivot."""
    rows = image[28:32]
    dark = np.where(rows < 128, 255.0 - rows, 0.0)
    return float((dark * np.arange(image.shape[1])).sum() / dark.sum())


@pytest.mark.parametrize(("x", "angle"), [(0.0, 0.0), (1.5, 0.1), (-2.0, -0.15)])
def test_the_cart_is_where_gymnasium_renders_it(x: float, angle: float) -> None:
    frame, rendered = drawn(x, angle)
    assert abs(cart_column(frame) - cart_column(rendered)) < 0.5
    assert abs(cart_column(frame) - (29.5 + x * 12.5)) < 0.5  # 125 screen pixels per unit, 10 per image pixel


def test_the_pole_leans_the_way_it_falls_and_a_fraction_of_a_pixel_shows() -> None:
    upright, _ = drawn(0.0, 0.0)
    right, _ = drawn(0.0, 0.2)
    left, _ = drawn(0.0, -0.2)
    assert darkness_center(right)[1] > darkness_center(upright)[1] > darkness_center(left)[1]
    nudged, _ = drawn(0.02, 0.0)  # 2.5 screen pixels: a quarter of an image pixel
    assert not np.array_equal(nudged, upright)
    assert darkness_center(nudged)[1] > darkness_center(upright)[1]
