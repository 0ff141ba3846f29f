"""MA-POCA's centralized critic: the group's value and each agent's counterfactual baseline, by attention over agents.

As ML-Agents builds it (``POCAValueNetwork`` over a ``MultiAgentNetworkBody``):

- every agent's observations go through one shared :class:`~rayagents.learner.encoders.ObservationEncoder`;
- the **value** V(s) of a step embeds each agent of the group present at the step (the agent itself and its
  groupmates, observations only) with one :class:`~rayagents.learner.attention.EntityEmbedding`;
- the **baseline** b(s, a⁻ⁱ) of agent i embeds agent i from its observations (the same embedding) and each groupmate
  from its observations *and its action* (a second embedding; actions flattened by
  :func:`~rayagents.learner.reward_providers.flat_actions`), so it is the value of the step with every action but agent i's known;
- a :class:`~rayagents.learner.attention.ResidualSelfAttention` (4 heads, embedding = ``hidden_units``) over those
  entities, with absent agents masked out of the keys and of the average, so the result depends neither on the
  number of padding slots nor on the agents' order; then ``num_layers`` fully connected layers of
  ``hidden_units``, initialized small (weights times ``sqrt(0.125 / hidden_units)``, as ML-Agents does);
- with ``network_settings.memory``, an LSTM of ``memory_size / 2`` after them; the value and the baselines run it
  from memories of their own (the learner carries each agent's from one trajectory to the next);
- the count of agents present, scaled to [-1, 1] by the most agents seen so far (kept in the checkpoint), is
  appended to the encoding, and one linear value head per reward signal reads it.

The encodings before the LSTM (:meth:`GroupCritic.value_encoding`, :meth:`GroupCritic.baseline_encoding`) and the
heads after it (:meth:`GroupCritic.heads`) are apart so that the learner can run the LSTM trajectory by trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rayagents.configs import ConfigError, NetworkSettings
from rayagents.learner.attention import NUM_HEADS, EntityEmbedding, ResidualSelfAttention
from rayagents.learner.encoders import LinearEncoder, ObservationEncoder
from rayagents.learner.memory import LSTMMemory
from rayagents.learner.networks import ValueHeads
from rayagents.protocol.types import ActionSpec, ObservationSpec


class GroupCritic(nn.Module):
    """The group's value V and each agent's baseline, one head per reward signal each (they share the network).

    Arguments:
        observation_specs: one agent's observations (every agent of the group has the behavior's).
        action_spec: one agent's actions.
        settings: the behavior's ``network_settings`` (``hidden_units``, ``num_layers``, ``normalize``, encoders).
        stream_names: the reward signals, one value head each.
    """

    def __init__(
        self,
        observation_specs: Sequence[ObservationSpec],
        action_spec: ActionSpec,
        settings: NetworkSettings,
        stream_names: Sequence[str],
    ) -> None:
        super().__init__()
        if settings.hidden_units % NUM_HEADS != 0:
            raise ConfigError(
                f"network_settings.hidden_units is {settings.hidden_units}: POCA's critic attends over the group's "
                f"agents with {NUM_HEADS} heads of hidden_units / {NUM_HEADS} each, so it must be a multiple of "
                f"{NUM_HEADS} (e.g. {settings.hidden_units + NUM_HEADS - settings.hidden_units % NUM_HEADS})"
            )
        self.action_spec = action_spec
        self.observation_encoder = ObservationEncoder(observation_specs, settings)
        size = self.observation_encoder.output_size
        action_size = action_spec.continuous_size + sum(action_spec.discrete_branches)
        embedding = settings.hidden_units
        self.obs_embedding = EntityEmbedding(size, 0, 0, embedding)
        self.obs_action_embedding = EntityEmbedding(size + action_size, 0, 0, embedding)
        self.attention = ResidualSelfAttention(None, embedding)
        gain = (0.125 / settings.hidden_units) ** 0.5  # ML-Agents' T-Fixup scale for the layers after attention
        self.linear_encoder = LinearEncoder(embedding, settings.num_layers, settings.hidden_units, gain)
        self.memory: LSTMMemory | None = None
        if settings.memory is not None:
            self.memory = LSTMMemory(self.linear_encoder.output_size, settings.memory)
        encoding = self.linear_encoder.output_size if self.memory is None else self.memory.output_size
        self.value_heads = ValueHeads(encoding + 1, stream_names)
        self.register_buffer("max_agents", torch.ones(()))
        """The most agents present at one step seen so far (ML-Agents' ``_current_max_agents``)."""

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The reward signal names, in order."""
        return self.value_heads.stream_names

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of agents' observations into the normalizers."""
        self.observation_encoder.update_normalization(observations)

    def _encode_slots(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(batch, slots, *shape)`` observations per sensor → ``(batch, slots, encoding)``."""
        batch, slots = observations[0].shape[:2]
        flat = [o.reshape(batch * slots, *o.shape[2:]) for o in observations]
        return self.observation_encoder(flat).reshape(batch, slots, -1)

    @property
    def memory_size(self) -> int:
        """The size of the value's (and each baseline's) memory; 0 without memory."""
        return 0 if self.memory is None else self.memory.memory_size

    def values(
        self,
        observations: Sequence[torch.Tensor],
        groupmates: Sequence[torch.Tensor],
        present: torch.Tensor,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> dict[str, torch.Tensor]:
        """V of each step, ``(batch,)`` per reward signal, from the agent's observations ``(batch, *shape)`` and its
        groupmates' ``(batch, M, *shape)`` per sensor; ``present`` ``(batch, M)`` marks the groupmates there. With
        memory, the rows are whole sequences of ``sequence_length``, each starting from its row of ``memories``."""
        encoding, count = self.value_encoding(observations, groupmates, present)
        return self.heads(self._remember(encoding, memories, sequence_length), count)

    def baselines(
        self,
        observations: Sequence[torch.Tensor],
        groupmates: Sequence[torch.Tensor],
        groupmate_actions: torch.Tensor,
        present: torch.Tensor,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Each agent's counterfactual baseline, ``(batch,)`` per reward signal: its own observations, and its
        groupmates' observations with their flat actions ``(batch, M, action_size)``; memories as :meth:`values`."""
        encoding, count = self.baseline_encoding(observations, groupmates, groupmate_actions, present)
        return self.heads(self._remember(encoding, memories, sequence_length), count)

    def value_encoding(
        self, observations: Sequence[torch.Tensor], groupmates: Sequence[torch.Tensor], present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The value's encoding before the memory, and the scaled count of agents present (for :meth:`heads`)."""
        own = self.observation_encoder(observations).unsqueeze(1)
        entities = own if present.shape[1] == 0 else torch.cat([own, self._encode_slots(groupmates)], dim=1)
        return self._attend(self.obs_embedding(None, entities), present)

    def baseline_encoding(
        self,
        observations: Sequence[torch.Tensor],
        groupmates: Sequence[torch.Tensor],
        groupmate_actions: torch.Tensor,
        present: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The baseline's encoding before the memory, and the scaled count of agents present."""
        own = self.obs_embedding(None, self.observation_encoder(observations).unsqueeze(1))
        if present.shape[1] == 0:
            return self._attend(own, present)
        mates = torch.cat([self._encode_slots(groupmates), groupmate_actions.float()], dim=2)
        return self._attend(torch.cat([own, self.obs_action_embedding(None, mates)], dim=1), present)

    def heads(self, encoding: torch.Tensor, count: torch.Tensor) -> dict[str, torch.Tensor]:
        """The value heads over an encoding (after the memory, when there is one) and the scaled count."""
        return self.value_heads(torch.cat([encoding, count], dim=1))

    def _remember(self, encoding: torch.Tensor, memories: torch.Tensor | None, sequence_length: int) -> torch.Tensor:
        if self.memory is None:
            return encoding
        if memories is None:
            raise ValueError(f"this critic has a memory of {self.memory.memory_size}: pass each sequence's memories")
        return self.memory(encoding, memories, sequence_length)[0]

    def _attend(self, embeddings: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention over the agent (always there, first) and its groupmates, the fully connected layers; and the
        count of agents present scaled to [-1, 1] by the most seen so far."""
        padding = torch.cat([embeddings.new_zeros((embeddings.shape[0], 1)), 1.0 - present.float()], dim=1)
        pooled = self.attention(embeddings, padding)
        count = torch.sum(1.0 - padding, dim=1, keepdim=True)
        with torch.no_grad():
            self.max_agents.copy_(torch.maximum(self.max_agents, count.max()))
        return self.linear_encoder(pooled), count * 2.0 / self.max_agents - 1.0
