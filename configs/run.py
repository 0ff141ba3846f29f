"""The run-wide sections of the options (checkpoints, environment, engine, torch, cluster) and RunOptions."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from rayagents.configs.environment_parameters import EnvironmentParameterSettings
from rayagents.configs.errors import ConfigError
from rayagents.configs.trainer import TrainerSettings


@dataclasses.dataclass(frozen=True)
class CheckpointSettings:
    """Where results go and how a run starts (`checkpoint_settings`)."""

    run_id: str = "ppo"
    """Name of the run: its results go to results_dir/run_id."""

    initialize_from: str | None = None
    """Run id whose checkpoints initialize this run's models (the step count starts at 0)."""

    load_model: bool = False
    """Deprecated spelling of resume (`--load`)."""

    resume: bool = False
    """Resume the run from its checkpoints and training_status.json (the step count carries on)."""

    force: bool = False
    """Overwrite the results of an existing run with the same run_id."""

    train_model: bool = False
    """Deprecated (`--train`); has no effect."""

    inference: bool = False
    """Run the policies without training them."""

    results_dir: str = "results"
    """Folder that holds the runs' results."""

    @property
    def write_path(self) -> str:
        """results_dir/run_id: this run's results folder."""
        return os.path.join(self.results_dir, self.run_id)

    @property
    def maybe_init_path(self) -> str | None:
        """results_dir/initialize_from, or None without initialize_from."""
        if self.initialize_from is None:
            return None
        return os.path.join(self.results_dir, self.initialize_from)

    @property
    def run_logs_dir(self) -> str:
        """write_path/run_logs: training_status.json, timers.json and player logs."""
        return os.path.join(self.write_path, "run_logs")


@dataclasses.dataclass(frozen=True)
class EnvironmentSettings:
    """The environments that are started (`env_settings`)."""

    env_path: str | None = None
    """The player to start (a Unity build, or a simulation host scene); None means the Unity Editor."""

    env_args: tuple[str, ...] | None = None
    """Extra command-line arguments for the player."""

    base_port: int = 5005
    """First port of the players (rayagents picks free ports; kept for compatibility)."""

    num_envs: int = 1
    """Number of players (EnvActors) run at once."""

    num_areas: int = 1
    """Number of training areas each player instantiates."""

    timeout_wait: int = 60
    """Seconds to wait for a player to connect or answer."""

    seed: int = -1
    """Random seed of the run; -1 means a random seed in 0..9999."""

    max_lifetime_restarts: int = 10
    """Restarts of a crashed player allowed over the run; -1 means unlimited."""

    restarts_rate_limit_n: int = 1
    """Restarts allowed within restarts_rate_limit_period_s; -1 means unlimited."""

    restarts_rate_limit_period_s: int = 60
    """Period in seconds of the restart rate limit."""

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ConfigError(f"num_envs is {self.num_envs}: it must be at least 1")
        if self.num_envs > 1 and self.env_path is None:
            raise ConfigError(
                f"num_envs is {self.num_envs} but no env_path is set: training in the Unity Editor uses one "
                "environment; pass --env with a player build to run several"
            )
        if self.num_areas < 1:
            raise ConfigError(f"num_areas is {self.num_areas}: it must be at least 1")
        if self.timeout_wait <= 0:
            raise ConfigError(f"timeout_wait is {self.timeout_wait}: it must be at least 1 second")


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """Settings sent to each player through the engine configuration side channel (`engine_settings`)."""

    width: int = 84
    """Width of the player's window, in pixels."""

    height: int = 84
    """Height of the player's window, in pixels."""

    quality_level: int = 5
    """Unity quality level."""

    time_scale: float = 20.0
    """Speed of simulated time relative to real time."""

    target_frame_rate: int = -1
    """Target frame rate of the player; -1 means unlimited."""

    capture_frame_rate: int = 60
    """Frame rate Unity's Time.captureFramerate is set to."""

    no_graphics: bool = False
    """Run the player without graphics (-nographics): no camera observations."""

    no_graphics_monitor: bool = False
    """Run the player without a window, keeping graphics for camera observations."""


@dataclasses.dataclass(frozen=True)
class TorchSettings:
    """Torch settings (`torch_settings`)."""

    device: str | None = None
    """Torch device of the learner, e.g. "cpu" or "cuda:0"; None means "cuda" when there is one, else "cpu"."""


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """Where the work runs on the Ray cluster (`cluster_settings`; a rayagents addition to the ML-Agents YAML)."""

    address: str | None = None
    """Ray cluster to connect to ("auto", "ray://host:10001", ...); None means RAY_ADDRESS or a new local one."""

    num_cpus_per_env_actor: float = 1.0
    """CPUs Ray reserves for each EnvActor (its player and its CPU inference)."""

    env_actor_resources: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Custom Ray resources each EnvActor needs, e.g. {"unity": 1} to keep players on tagged nodes."""

    env_actor_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Ray node labels an EnvActor's node must have (a Ray label selector: {"rayagents/role": "player"}, or a value
    such as "in(a,b)" or "!gpu"); nodes get labels with ``ray start --labels``."""

    learner_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Ray node labels the LearnerActor's node must have (a Ray label selector, as for env_actor_labels)."""

    env_placement: str = "SPREAD"
    """Ray scheduling of the EnvActors over nodes: "SPREAD" (the default) or "DEFAULT"."""

    learner_num_cpus: float = 1.0
    """CPUs Ray reserves for the LearnerActor."""

    learner_num_gpus: float | None = dataclasses.field(default=None, metadata={"none_aliases": ("auto",)})
    """GPUs Ray reserves for the LearnerActor; None ("auto" in YAML) means 1 when the cluster has one, else 0."""

    learner_device: str | None = None
    """Torch device of the LearnerActor; None means torch_settings.device, or its default."""

    min_envs: int | None = None
    """Fewest running EnvActors that training goes on with: it starts as soon as this many are up (the rest join
    as their nodes arrive) and pauses while fewer are up; None means 1."""

    learner_max_restarts: int = 3
    """How often a lost LearnerActor (its node gone, its process killed) is restarted from the latest checkpoint;
    -1 for no bound, 0 to end the run instead."""

    def __post_init__(self) -> None:
        if self.num_cpus_per_env_actor < 0.0:
            raise ConfigError(f"num_cpus_per_env_actor is {self.num_cpus_per_env_actor}: it must not be negative")
        if self.learner_num_cpus < 0.0:
            raise ConfigError(f"learner_num_cpus is {self.learner_num_cpus}: it must not be negative")
        if self.learner_num_gpus is not None and self.learner_num_gpus < 0.0:
            raise ConfigError(f"learner_num_gpus is {self.learner_num_gpus}: it must not be negative (or 'auto')")
        if self.env_placement not in ("SPREAD", "DEFAULT"):
            raise ConfigError(f"env_placement is {self.env_placement!r}: use 'SPREAD' or 'DEFAULT'")
        if self.learner_max_restarts < -1:
            raise ConfigError(
                f"learner_max_restarts is {self.learner_max_restarts}: use -1 (no bound), 0 or a positive count"
            )
        if self.min_envs is not None and self.min_envs < 1:
            raise ConfigError(f"min_envs is {self.min_envs}: it must be at least 1 (or null)")
        for name, amount in self.env_actor_resources.items():
            if amount < 0.0:
                raise ConfigError(f"env_actor_resources.{name} is {amount}: it must not be negative")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Everything a run is configured with: the trainer YAML merged with the command line."""

    default_settings: TrainerSettings | None = None
    """Settings every behavior starts from (deep-merged under each); None when the YAML has none."""

    behaviors: Mapping[str, TrainerSettings] = dataclasses.field(default_factory=dict)
    """Trainer settings by behavior name, default_settings already merged in; read-only by convention."""

    env_settings: EnvironmentSettings = dataclasses.field(default_factory=EnvironmentSettings)
    """The environments that are started."""

    engine_settings: EngineSettings = dataclasses.field(default_factory=EngineSettings)
    """Settings sent to the players."""

    environment_parameters: Mapping[str, EnvironmentParameterSettings] | None = None
    """Environment parameters (samplers, curricula) by name; None when the YAML has none."""

    checkpoint_settings: CheckpointSettings = dataclasses.field(default_factory=CheckpointSettings)
    """Where results go and how the run starts."""

    torch_settings: TorchSettings = dataclasses.field(default_factory=TorchSettings)
    """Torch settings."""

    cluster_settings: ClusterSettings = dataclasses.field(default_factory=ClusterSettings)
    """Where the work runs on the Ray cluster."""

    debug: bool = False
    """Log at debug level."""
