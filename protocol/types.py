"""The numpy-level view of an environment, with the semantics of ``mlagents_envs.base_env``.

A behavior's agents are batched: every array has the agents along axis 0. ``DecisionSteps`` holds the agents
that requested a decision this step, ``TerminalSteps`` the agents whose episode ended; an agent may be in
both in one step (it ended an episode and started the next).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterator, Mapping, NamedTuple
from urllib.parse import parse_qs, urlparse

import numpy as np

AgentId = int
"""The id Unity gives an agent (``AgentInfoProto.id``); stable across that agent's episodes."""

BehaviorName = str
"""A fully qualified behavior name: ``"<BehaviorName>?team=<TeamId>"``."""


class DimensionProperty(enum.IntFlag):
    """What a dimension of an observation means, as an int flag per dimension."""

    UNSPECIFIED = 0
    NONE = 1
    TRANSLATIONAL_EQUIVARIANCE = 2
    VARIABLE_SIZE = 4


class ObservationType(enum.Enum):
    """What an observation is for."""

    DEFAULT = 0
    GOAL_SIGNAL = 1


@dataclass(frozen=True)
class ObservationSpec:
    """The shape and meaning of one sensor's observation (visual observations are CHW)."""

    shape: tuple[int, ...]
    """The observation's shape without the batch axis: ``(length,)``, ``(C, H, W)`` or ``(entities, size)``."""
    dimension_property: tuple[DimensionProperty, ...]
    """One flag per dimension of ``shape``."""
    observation_type: ObservationType
    """Whether this is an ordinary observation or a goal signal."""
    name: str
    """The sensor's name; a behavior's sensors are sorted by it."""


@dataclass(frozen=True)
class ActionSpec:
    """A behavior's actions: ``continuous_size`` floats and one integer per discrete branch."""

    continuous_size: int
    """How many continuous actions an agent takes each decision."""
    discrete_branches: tuple[int, ...]
    """The number of choices of each discrete branch."""

    @property
    def discrete_size(self) -> int:
        """The number of discrete branches."""
        return len(self.discrete_branches)

    def is_discrete(self) -> bool:
        """True when the actions are discrete only."""
        return self.discrete_size > 0 and self.continuous_size == 0

    def is_continuous(self) -> bool:
        """True when the actions are continuous only."""
        return self.discrete_size == 0 and self.continuous_size > 0

    def empty_action(self, n_agents: int) -> "ActionTuple":
        """Zero actions for ``n_agents`` agents."""
        return ActionTuple(
            continuous=np.zeros((n_agents, self.continuous_size), dtype=np.float32),
            discrete=np.zeros((n_agents, self.discrete_size), dtype=np.int32),
        )

    def random_action(self, n_agents: int, rng: np.random.Generator | None = None) -> "ActionTuple":
        """Uniform random actions: continuous in [-1, 1], discrete uniform per branch."""
        rng = rng if rng is not None else np.random.default_rng()
        continuous = rng.uniform(-1.0, 1.0, size=(n_agents, self.continuous_size)).astype(np.float32)
        discrete = np.zeros((n_agents, self.discrete_size), dtype=np.int32)
        for i, branch in enumerate(self.discrete_branches):
            discrete[:, i] = rng.integers(0, branch, size=n_agents)
        return ActionTuple(continuous=continuous, discrete=discrete)

    @staticmethod
    def create_continuous(continuous_size: int) -> "ActionSpec":
        """A continuous-only action spec."""
        return ActionSpec(continuous_size, ())

    @staticmethod
    def create_discrete(discrete_branches: tuple[int, ...]) -> "ActionSpec":
        """A discrete-only action spec."""
        return ActionSpec(0, tuple(discrete_branches))

    @staticmethod
    def create_hybrid(continuous_size: int, discrete_branches: tuple[int, ...]) -> "ActionSpec":
        """An action spec with both continuous actions and discrete branches."""
        return ActionSpec(continuous_size, tuple(discrete_branches))


@dataclass(frozen=True)
class BehaviorSpec:
    """What a behavior observes and how it acts."""

    observation_specs: tuple[ObservationSpec, ...]
    """One spec per sensor, in the order of the observations (sorted by sensor name)."""
    action_spec: ActionSpec
    """The behavior's actions."""


class ActionTuple:
    """Actions for a batch of agents: continuous ``float32 (n, continuous_size)`` and discrete ``int32 (n, branches)``.

    Setting one part only leaves the other a zero-width array with the same number of agents.
    """

    def __init__(self, continuous: np.ndarray | None = None, discrete: np.ndarray | None = None) -> None:
        self._continuous = np.zeros((0, 0), dtype=np.float32)
        self._discrete = np.zeros((0, 0), dtype=np.int32)
        if continuous is not None:
            self.add_continuous(continuous)
        if discrete is not None:
            self.add_discrete(discrete)

    @property
    def continuous(self) -> np.ndarray:
        """Continuous actions, ``float32 (n, continuous_size)``."""
        return self._continuous

    @property
    def discrete(self) -> np.ndarray:
        """Discrete actions, ``int32 (n, n_branches)``."""
        return self._discrete

    def add_continuous(self, continuous: np.ndarray) -> None:
        """Sets the continuous part (cast to float32, 2-D)."""
        continuous = np.asarray(continuous, dtype=np.float32)
        if continuous.ndim != 2:
            raise ValueError(f"continuous actions must be 2-D (agents, size), got shape {continuous.shape}")
        if self._discrete.shape[1] == 0:
            self._discrete = np.zeros((continuous.shape[0], 0), dtype=np.int32)
        self._continuous = continuous

    def add_discrete(self, discrete: np.ndarray) -> None:
        """Sets the discrete part (cast to int32, 2-D)."""
        discrete = np.asarray(discrete, dtype=np.int32)
        if discrete.ndim != 2:
            raise ValueError(f"discrete actions must be 2-D (agents, branches), got shape {discrete.shape}")
        if self._continuous.shape[1] == 0:
            self._continuous = np.zeros((discrete.shape[0], 0), dtype=np.float32)
        self._discrete = discrete

    @property
    def n_agents(self) -> int:
        """The number of agents these actions are for."""
        return max(self._continuous.shape[0], self._discrete.shape[0])

    def __repr__(self) -> str:
        return f"ActionTuple(continuous={self._continuous!r}, discrete={self._discrete!r})"


class DecisionStep(NamedTuple):
    """One agent's view of a ``DecisionSteps`` batch."""

    obs: list[np.ndarray]
    reward: float
    agent_id: AgentId
    action_mask: list[np.ndarray] | None
    group_id: int
    group_reward: float


class TerminalStep(NamedTuple):
    """One agent's view of a ``TerminalSteps`` batch."""

    obs: list[np.ndarray]
    reward: float
    interrupted: bool
    agent_id: AgentId
    group_id: int
    group_reward: float


def _index_of(agent_ids: np.ndarray) -> dict[AgentId, int]:
    return dict(zip(agent_ids.tolist(), range(len(agent_ids))))


@dataclass(frozen=True, eq=False)
class DecisionSteps(Mapping[AgentId, DecisionStep]):
    """The agents of one behavior that requested a decision, batched; a mapping from agent id to ``DecisionStep``."""

    obs: list[np.ndarray]
    """One array per sensor, each ``(n_agents, *shape)``: ``float32``, or ``uint8`` (0..255) for a PNG-compressed
    sensor decoded with ``visual_observations="uint8"``."""
    reward: np.ndarray
    """``float32 (n_agents,)``: the reward since the agent's last decision."""
    agent_id: np.ndarray
    """``int32 (n_agents,)``."""
    action_mask: list[np.ndarray] | None
    """One ``bool (n_agents, branch_size)`` array per discrete branch, True = the action is disabled; None without branches."""
    group_id: np.ndarray
    """``int32 (n_agents,)``; 0 = the agent is in no group."""
    group_reward: np.ndarray
    """``float32 (n_agents,)``."""
    _index: dict[AgentId, int] | None = field(default=None, init=False, repr=False)

    @property
    def agent_id_to_index(self) -> dict[AgentId, int]:
        """The row of each agent id (built on first use: most steps never need it)."""
        if self._index is None:
            object.__setattr__(self, "_index", _index_of(self.agent_id))
        assert self._index is not None
        return self._index

    def __len__(self) -> int:
        return len(self.agent_id)

    def __iter__(self) -> Iterator[AgentId]:
        return (int(a) for a in self.agent_id)

    def __getitem__(self, agent_id: AgentId) -> DecisionStep:
        i = self.agent_id_to_index.get(agent_id)
        if i is None:
            raise KeyError(f"agent_id {agent_id} is not present in the DecisionSteps")
        mask = None if self.action_mask is None else [m[i] for m in self.action_mask]
        return DecisionStep(
            obs=[o[i] for o in self.obs],
            reward=float(self.reward[i]),
            agent_id=agent_id,
            action_mask=mask,
            group_id=int(self.group_id[i]),
            group_reward=float(self.group_reward[i]),
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> "DecisionSteps":
        """A batch with no agents, shaped for ``spec``, its observations ``float32`` (``StepDecoder.empty``
        gives those of a decoder's dtypes)."""
        return DecisionSteps(
            obs=[np.zeros((0,) + s.shape, dtype=np.float32) for s in spec.observation_specs],
            reward=np.zeros(0, dtype=np.float32),
            agent_id=np.zeros(0, dtype=np.int32),
            action_mask=None,
            group_id=np.zeros(0, dtype=np.int32),
            group_reward=np.zeros(0, dtype=np.float32),
        )


@dataclass(frozen=True, eq=False)
class TerminalSteps(Mapping[AgentId, TerminalStep]):
    """The agents of one behavior whose episode ended this step, batched; a mapping from agent id to ``TerminalStep``."""

    obs: list[np.ndarray]
    """One array per sensor, each ``(n_agents, *shape)``: the final observations; ``float32``, or ``uint8``
    (0..255) for a PNG-compressed sensor decoded with ``visual_observations="uint8"``."""
    reward: np.ndarray
    """``float32 (n_agents,)``: the last reward of the episode."""
    interrupted: np.ndarray
    """``bool (n_agents,)``: True when the episode was cut off (max step reached) rather than ended."""
    agent_id: np.ndarray
    """``int32 (n_agents,)``."""
    group_id: np.ndarray
    """``int32 (n_agents,)``; 0 = the agent is in no group."""
    group_reward: np.ndarray
    """``float32 (n_agents,)``."""
    _index: dict[AgentId, int] | None = field(default=None, init=False, repr=False)

    @property
    def agent_id_to_index(self) -> dict[AgentId, int]:
        """The row of each agent id (built on first use: most steps never need it)."""
        if self._index is None:
            object.__setattr__(self, "_index", _index_of(self.agent_id))
        assert self._index is not None
        return self._index

    def __len__(self) -> int:
        return len(self.agent_id)

    def __iter__(self) -> Iterator[AgentId]:
        return (int(a) for a in self.agent_id)

    def __getitem__(self, agent_id: AgentId) -> TerminalStep:
        i = self.agent_id_to_index.get(agent_id)
        if i is None:
            raise KeyError(f"agent_id {agent_id} is not present in the TerminalSteps")
        return TerminalStep(
            obs=[o[i] for o in self.obs],
            reward=float(self.reward[i]),
            interrupted=bool(self.interrupted[i]),
            agent_id=agent_id,
            group_id=int(self.group_id[i]),
            group_reward=float(self.group_reward[i]),
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> "TerminalSteps":
        """A batch with no agents, shaped for ``spec``, its observations ``float32`` (``StepDecoder.empty``
        gives those of a decoder's dtypes)."""
        return TerminalSteps(
            obs=[np.zeros((0,) + s.shape, dtype=np.float32) for s in spec.observation_specs],
            reward=np.zeros(0, dtype=np.float32),
            interrupted=np.zeros(0, dtype=bool),
            agent_id=np.zeros(0, dtype=np.int32),
            group_id=np.zeros(0, dtype=np.int32),
            group_reward=np.zeros(0, dtype=np.float32),
        )


class BehaviorId(NamedTuple):
    """A fully qualified behavior name split into its parts."""

    name: str
    """The behavior name as the user configures it in the trainer YAML."""
    team: int
    """The team id (0 unless the scene has teams)."""

    @staticmethod
    def parse(fully_qualified: BehaviorName) -> "BehaviorId":
        """Splits ``"Name?team=1"`` into ``("Name", 1)``; a name without a team query is team 0."""
        parsed = urlparse(fully_qualified)
        teams = parse_qs(parsed.query).get("team")
        return BehaviorId(parsed.path, int(teams[0]) if teams else 0)

    def qualified(self) -> BehaviorName:
        """The name as Unity sends it: ``"Name?team=<team>"``."""
        return f"{self.name}?team={self.team}"
