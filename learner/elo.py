"""ELO ratings of self-play, as ML-Agents computes them (its ``GhostController``).

A game's result is read from the learning agent's last reward (> 0 a win, < 0 a loss, 0 a draw). The rating
change is ``K × (result − expected)``, where ``expected = 1 / (1 + 10^((opponent − rating) / 400))``; ML-Agents
uses K = 1, so a rating moves by less than one point per game and the curve in TensorBoard is smooth over the
thousands of games of a run. The opponent's rating moves by the opposite amount.
"""

from __future__ import annotations

ELO_K = 1.0
"""The K factor: the most a rating moves in one game (ML-Agents' value)."""

WIN, DRAW, LOSS = 1.0, 0.5, 0.0
"""A game's result for the learning team."""


def game_result(final_reward: float) -> float:
    """The result of a game whose learning agent's last reward was ``final_reward``: WIN, DRAW or LOSS."""
    if final_reward > 0:
        return WIN
    if final_reward < 0:
        return LOSS
    return DRAW


def expected_score(rating: float, opponent: float) -> float:
    """The expected result of a player rated ``rating`` against one rated ``opponent`` (0.5 between equals)."""
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def rating_change(rating: float, opponent: float, result: float) -> float:
    """How much the player's rating moves after a game with ``result`` (the opponent's moves by the opposite)."""
    return ELO_K * (result - expected_score(rating, opponent))
