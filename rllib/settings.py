"""``UnitySettings``: what an RLlib ``env_config`` says about the Unity player(s) of a ``UnityMultiAgentEnv``.

The keys are those RLlib's removed ``Unity3DEnv`` took (``file_name``, ``port``, ``seed``, ``no_graphics``,
``timeout_wait``, ``episode_horizon``) plus ``num_areas``, the player's log folder, its time scale and
mlagents-learn's restart limits. An unknown key or a value of the wrong type is a ``ValueError`` that names it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class UnitySettings:
    """The Unity side of one RLlib environment (read from RLlib's ``env_config``)."""

    file_name: str | None = None
    """The build: a path (with or without ``.x86_64``), a build archive URI, ``sim:NAME`` for a scene of the
    bundled simulation host, or None for the Unity Editor (press Play after the environment starts)."""
    port: int | None = None
    """The port the trainer listens on; None picks a free one per environment (the Editor: 5004)."""
    seed: int = 0
    """The player's seed; each EnvRunner's players add its ``worker_index`` to it."""
    no_graphics: bool = True
    """Launch the player headless (``-nographics -batchmode``)."""
    timeout_wait: float = 60.0
    """Seconds to wait for each message of the player before giving up on it."""
    episode_horizon: int = 1000
    """The most environment steps of one RLlib episode: then it is truncated and the player reset."""
    num_areas: int = 1
    """Training areas the player builds (``Academy.NumAreas``); each area's agents are agents of the episode."""
    action_masks: bool = False
    """Give discrete behaviors RLlib's action-masking layout (a Dict of ``action_mask`` and ``observations``):
    set it when the game masks actions (``WriteDiscreteActionMask``); agents that send no mask allow every
    action."""
    time_scale: float = 20.0
    """Unity's time scale (mlagents-learn's ``--time-scale`` default); the simulation host ignores it."""
    log_folder: str | None = None
    """Where each player writes ``Player-<worker_index>-<token>.log`` (a random token per environment); None
    keeps no log."""
    max_lifetime_restarts: int = 10
    """The most player restarts over the environment's life; -1 for no bound (mlagents-learn's default 10)."""
    restarts_rate_limit_n: int = 1
    """The most player restarts within ``restarts_rate_limit_period_s``; -1 for no limit."""
    restarts_rate_limit_period_s: float = 60.0
    """The window of the restart rate limit, in seconds."""

    @staticmethod
    def from_env_config(config: Mapping[str, Any]) -> UnitySettings:
        """The settings in RLlib's ``env_config`` (a dict); ValueError names an unknown key or a bad value."""
        fields = {f.name: f for f in dataclasses.fields(UnitySettings)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(
                f"env_config has unknown keys {unknown}: a UnityMultiAgentEnv takes {sorted(fields)}"
            )
        values = {name: _checked(name, str(fields[name].type), value) for name, value in config.items()}
        settings = UnitySettings(**values)
        if settings.episode_horizon < 1 or settings.num_areas < 1:
            raise ValueError(
                f"env_config: episode_horizon ({settings.episode_horizon}) and num_areas ({settings.num_areas}) "
                "must be at least 1"
            )
        if settings.file_name is None and settings.log_folder is not None:
            raise ValueError("env_config: log_folder names a player's log, and the Unity Editor (no file_name) has none")
        return settings


def _checked(name: str, annotation: str, value: Any) -> Any:
    """``value`` of the field ``name`` (annotated ``int``, ``float``, ``bool``, ``str`` or ``... | None``), checked."""
    if value is None and annotation.endswith("| None"):
        return None
    kind = annotation.split("|")[0].strip()
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expected = {"int": int, "bool": bool, "str": str, "float": float}[kind]
    if isinstance(value, expected) and (kind != "int" or not isinstance(value, bool)):
        return value
    article = "an" if kind == "int" else "a"
    nullable = " or None" if annotation.endswith("| None") else ""
    raise ValueError(f"env_config[{name!r}] is {value!r}: it must be {article} {kind}{nullable}")
