"""Which torch actors are plain, and a plain torch actor's copy in numpy (for the tests and the benchmarks that
compare the two).

A plain actor has vector observations only, no memory, no goal hypernetwork and no attention; any other actor acts
in torch.
"""

from __future__ import annotations

from rayagents.learner.encoders import VectorInput
from rayagents.learner.networks import Actor
from rayagents.learner.numpy_actor import NumpyActor, layout_from_state
from rayagents.learner.weights import actor_weights


def is_plain(actor: Actor) -> bool:
    """Whether ``actor`` can act in numpy: vector observations only, no memory, no goal hypernetwork, no
    attention."""
    body = actor.network_body
    encoder = body.observation_encoder
    return (
        actor.memory is None
        and body.linear_encoder is not None
        and body.action_size == 0
        and encoder.attention is None
        and all(isinstance(p, VectorInput) for p in encoder.processors)
    )


def numpy_actor_of(actor: Actor) -> NumpyActor | None:
    """``actor``'s current weights as a :class:`~rayagents.learner.numpy_actor.NumpyActor`, or None when it is not
    a plain actor."""
    if not is_plain(actor):
        return None
    state = actor_weights(actor)
    layout = layout_from_state(state, len(actor.observation_specs), actor.action_heads.tanh_squash)
    return NumpyActor.from_state(layout, state)
