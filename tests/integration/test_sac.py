"""SAC through ``rayagents-learn`` and on the actor–learner core: real Ray, real simulation-host players, real gRPC.

1. ``save_replay_buffer`` end to end. Without it a run writes checkpoints and no ``last_replay_buffer.pt``; resumed
   with it on, the run says its buffer starts empty, carries on from the saved step, and writes the buffer beside
   ``checkpoint.pt`` with every experience it took in, oldest first; resumed again, the buffer is taken back without
   a word (its saved buffer is full, its oldest rows the newest of the buffer saved before) and the summaries go on
   from the saved step. This test runs first: the module's own Ray cluster is not up yet.
2. The update/step ratio (ML-Agents' rule: gradient steps while ``(step - buffer_init_steps) / update_steps >
   steps_per_update``, ``update_steps`` from 1) holds whatever the fleet: a real LearnerActor fed by 1, then 3
   EnvActors playing Pendulum (driven by hand, as in ``test_actor_learner``) ends with exactly the gradient steps the
   rule gives for the steps it took in. The count is read from the final checkpoint (``LearnerActor.save``): each
   gradient step is one Adam step of each SAC optimizer, so the ``step`` of their saved state counts them, beside
   the trainer's ``global_step``. ``Policy/Updates per Step`` in the summaries says about the same along the way.
   When the learner is the bottleneck (``steps_per_update`` 0.25: four gradient steps per agent step) the EnvActors'
   submits are made to wait (``LearnerProgress.throttled_s``) and the count is still exactly the rule's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
import torch
import yaml
from env_actors import env_actors
from learn_runs import SUMMARY_LINE, run_learn
from rayagents.actors.env_actor import CollectReport
from rayagents.cluster.tensorboard import read_scalars
from rayagents.configs import run_options_from_dict
from rayagents.learner.checkpoints import LATEST_CHECKPOINT, REPLAY_BUFFER
from rayagents.learner.learner_actor import remote_learner
from rayagents.learner.learner_messages import LearnerProgress, LearnerSettings
from rayagents.learner.replay_buffer import RING_START
from rayagents.protocol.trajectories import TrajectoryBatch

pytestmark = pytest.mark.slow

BEHAVIOR = "Pendulum"


# ---- save_replay_buffer through rayagents-learn ---------------------------------------------------------------------

BUFFER_SIZE = 1750
RUN_ID = "sac"
MISSING_BUFFER = "the replay buffer starts empty"
"""What a resumed run says (console and learner log) when it finds no saved replay buffer or cannot read it."""


def write_sac_config(path: Path, max_steps: int, save_replay_buffer: bool) -> Path:
    """A small SAC config for sim:Pendulum: a checkpoint and a summary every 500 steps."""
    config = {
        "behaviors": {
            BEHAVIOR: {
                "trainer_type": "sac",
                "hyperparameters": {
                    "batch_size": 64,
                    "buffer_size": BUFFER_SIZE,
                    "buffer_init_steps": 100,
                    "steps_per_update": 4,
                    "save_replay_buffer": save_replay_buffer,
                },
                "network_settings": {"hidden_units": 32, "num_layers": 2},
                "max_steps": max_steps,
                "summary_freq": 500,
                "checkpoint_interval": 500,
                "keep_checkpoints": 2,
                "time_horizon": 64,
            }
        }
    }
    path.write_text(yaml.safe_dump(config))
    return path


def learn_pendulum(work: Path, name: str, max_steps: int, save_replay_buffer: bool, *more: str) -> str:
    """Runs ``rayagents-learn`` on sim:Pendulum (1 EnvActor x 4 areas, seed 3, run id ``sac`` in ``work/results``)
    with :func:`write_sac_config`'s config and ``more`` arguments; returns its output once it exited cleanly."""
    config = write_sac_config(work / f"{name}.yaml", max_steps, save_replay_buffer)
    args = [str(config), "--env", "sim:Pendulum", "--num-envs", "1", "--num-areas", "4", "--seed", "3",
            "--results-dir", str(work / "results"), "--run-id", RUN_ID, *more]  # fmt: skip
    code, output = run_learn(args, work, timeout=120, name=name)
    assert code == 0, output
    return output


def summary_steps(output: str) -> list[int]:
    return [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]


def saved_buffer(folder: Path) -> dict[str, torch.Tensor]:
    """The replay buffer a run saved, by column, oldest experience first (it is saved as its ring lies, with the
    row of the oldest experience)."""
    saved = torch.load(folder / REPLAY_BUFFER, map_location="cpu", weights_only=True)
    assert set(saved) == {"replay_buffer"}
    columns: dict[str, torch.Tensor] = dict(saved["replay_buffer"])
    start = int(columns.pop(RING_START))
    assert len({len(column) for column in columns.values()}) == 1, {k: v.shape for k, v in columns.items()}
    return {name: torch.cat([column[start:], column[:start]]) for name, column in columns.items()}


def saved_step(folder: Path) -> int:
    """The step of the behavior's latest checkpoint."""
    checkpoint = torch.load(folder / LATEST_CHECKPOINT, map_location="cpu", weights_only=True)
    return int(checkpoint["global_step"]["_GlobalSteps__global_step"].item())


@pytest.mark.timeout(400)
def test_save_replay_buffer_writes_the_buffer_beside_the_checkpoint_and_resume_takes_it_back(tmp_path: Path) -> None:
    folder = tmp_path / "results" / RUN_ID / BEHAVIOR

    # 1. Without save_replay_buffer: checkpoints, no replay buffer.
    output = learn_pendulum(tmp_path, "nosave", 500, save_replay_buffer=False)
    first_step = saved_step(folder)
    assert first_step >= 500 and list(folder.glob("Pendulum-*.pt")), output
    assert not (folder / REPLAY_BUFFER).exists()

    # 2. Resumed with save_replay_buffer on: it says its buffer starts empty, carries on from the saved step, and
    #    saves every experience it took in (fewer than buffer_size), oldest first, beside checkpoint.pt.
    output = learn_pendulum(tmp_path, "save", 1500, True, "--resume")
    assert MISSING_BUFFER in output, output
    steps = summary_steps(output)
    assert steps and steps[0] > first_step and steps[-1] >= 1500, output
    second_step = saved_step(folder)
    second = saved_buffer(folder)
    assert len(second["rewards"]) == min(BUFFER_SIZE, second_step - first_step) == second_step - first_step
    assert second["obs_0"].shape == (second_step - first_step, 3)
    assert second["continuous_actions"].shape == (second_step - first_step, 1)
    assert float(second["rewards"].max()) <= 0.0 and float(second["rewards"].min()) >= -16.3  # Pendulum's range

    # 3. Resumed again: the saved buffer is taken back without a word, and the run carries on from its step. The
    #    buffer it saves is full (it would not be without the restored experiences), and its oldest rows are the
    #    newest of the buffer saved before.
    output = learn_pendulum(tmp_path, "resumed", 2800, True, "--resume")
    assert MISSING_BUFFER not in output and "does not exist" not in output, output
    steps = summary_steps(output)
    assert steps and steps[0] > second_step and steps[-1] >= 2500, output
    third_step = saved_step(folder)
    assert third_step > 2800
    third = saved_buffer(folder)
    assert third_step - first_step > BUFFER_SIZE
    assert len(third["rewards"]) == min(BUFFER_SIZE, third_step - first_step) == BUFFER_SIZE
    carried = BUFFER_SIZE - (third_step - second_step)
    assert carried > 0, f"the third run took {third_step - second_step} steps: nothing of the second run's buffer left"
    for name, column in second.items():
        assert torch.equal(third[name][:carried], column[len(column) - carried :]), name
    # TensorBoard: each run's summaries after the previous run's, none written twice.
    written = sorted(step for step, _ in read_scalars(folder)["Policy/Dropped Steps"])
    assert len(written) == len(set(written)) and written[-len(steps) :] == steps, (written, steps)


# ---- the update/step ratio on the actor-learner core --------------------------------------------------------------

NUM_AREAS = 2
TIME_HORIZON = 16
BUFFER_INIT_STEPS = 100
UPDATES_PER_STEP = "Policy/Updates per Step"
SAC_OPTIMIZERS = ("Optimizer:policy_optimizer", "Optimizer:value_optimizer", "Optimizer:entropy_optimizer")
"""The optimizers one gradient step steps once each."""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A new Ray cluster on this machine for the module's tests, even when another one already runs here."""
    ray.init(address="local", num_cpus=4, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def due_gradient_steps(step: int, steps_per_update: float, buffer_init_steps: int = BUFFER_INIT_STEPS) -> int:
    """ML-Agents' rule, counted out: gradient steps are made while ``(step - init) / update_steps > ratio``,
    ``update_steps`` counting from 1; so the count is the smallest ``update_steps`` with ``(step - init) <= ratio *
    update_steps``, less one."""
    if step <= buffer_init_steps:
        return 0
    return math.ceil((step - buffer_init_steps) / steps_per_update) - 1


@dataclass
class SACPlayed:
    """What a hand-driven SAC run saw."""

    reports: list[CollectReport]
    """Every collect report."""
    progress: LearnerProgress
    """The learner's progress once it had taken in everything sent and run every update due."""
    summaries: list[dict[str, float]]
    """Every summary the learner made, with its step under ``"step"``."""
    checkpoint: dict[str, Any]
    """The final checkpoint (``checkpoint.pt``) the learner's ``save`` wrote."""
    behavior_folder: Path
    """The behavior's results folder."""

    @property
    def sent(self) -> int:
        return sum(report.steps for report in self.reports)

    @property
    def saved_step(self) -> int:
        return int(self.checkpoint["global_step"]["_GlobalSteps__global_step"].item())

    def gradient_steps(self) -> set[int]:
        """The Adam step count of every parameter of every SAC optimizer in the checkpoint (one value when each
        gradient step stepped every optimizer once)."""
        return {
            int(state["step"])
            for name in SAC_OPTIMIZERS
            for state in self.checkpoint[name]["state"].values()
        }


def play_sac(tmp_path: Path, num_envs: int, steps_per_update: float, min_steps: int, max_rounds: int) -> SACPlayed:
    """``num_envs`` EnvActors × 2 areas of Pendulum against one SAC learner until they sent ``min_steps`` (at most
    ``max_rounds`` collect calls each); then every batch answered, taken in and caught up on, and the learner saved."""
    options = run_options_from_dict(
        {
            "behaviors": {
                BEHAVIOR: {
                    "trainer_type": "sac",
                    "hyperparameters": {
                        "batch_size": 32,
                        "buffer_size": 20_000,
                        "buffer_init_steps": BUFFER_INIT_STEPS,
                        "steps_per_update": steps_per_update,
                        "save_replay_buffer": False,
                    },
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "time_horizon": TIME_HORIZON,
                    "summary_freq": 500,
                    "checkpoint_interval": 1_000_000,
                    "max_steps": 1_000_000,
                }
            }
        }
    )
    learner = remote_learner().remote(options, LearnerSettings(write_path=str(tmp_path), seed=1, num_threads=1))
    ray.get(learner.start.remote())
    actors = env_actors(
        learner,
        options,
        env_path=f"sim:{BEHAVIOR}",
        behavior=BEHAVIOR,
        count=num_envs,
        num_areas=NUM_AREAS,
        time_horizon=TIME_HORIZON,
        log_folder=tmp_path,
    )
    try:
        ray.get([actor.start.remote() for actor in actors])
        reports: list[CollectReport] = []
        for _ in range(max_rounds):
            reports += ray.get([actor.collect.remote() for actor in actors])
            if sum(report.steps for report in reports) >= min_steps:
                break
        ray.get([actor.flush.remote() for actor in actors])
        sent = sum(report.steps for report in reports)
        summaries: list[dict[str, float]] = []
        progress = caught_up(learner, sent, summaries)
        ray.get(learner.save.remote())
        checkpoint = torch.load(tmp_path / BEHAVIOR / LATEST_CHECKPOINT, map_location="cpu", weights_only=True)
        return SACPlayed(reports, progress, summaries, checkpoint, tmp_path / BEHAVIOR)
    finally:
        ray.get([actor.close.remote() for actor in actors])
        for handle in [*actors, learner]:
            ray.kill(handle)


def caught_up(learner: Any, sent: int, summaries: list[dict[str, float]], timeout: float = 120) -> LearnerProgress:
    """The learner's progress once it took in all ``sent`` steps and ran every update due: its version stays put
    over a few polls, each after an empty submit (a submit waits while the trainers catch up)."""
    deadline = time.monotonic() + timeout
    stable = 0
    last_version = -1
    while time.monotonic() < deadline:
        ray.get(learner.submit.remote(TrajectoryBatch(env_actor=0, trajectories=())))
        time.sleep(0.2)
        progress: LearnerProgress = ray.get(learner.progress.remote())
        summaries.extend({**summary.scalars, "step": summary.step} for summary in progress.summaries)
        (state,) = progress.behaviors
        stable = stable + 1 if state.step == sent and state.version == last_version else 0
        last_version = state.version
        if stable >= 3:
            return progress
    raise AssertionError(f"the learner did not take in {sent} steps and catch up within {timeout} s")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("num_envs", [1, 3], ids=["1-env-actor", "3-env-actors"])
def test_gradient_steps_follow_steps_per_update_at_any_fleet_size(
    local_ray: None, tmp_path: Path, num_envs: int
) -> None:
    steps_per_update = 2
    played = play_sac(tmp_path, num_envs, steps_per_update, min_steps=2500, max_rounds=400)
    (state,) = played.progress.behaviors
    assert played.sent >= 2500
    assert state.step == played.sent == played.saved_step, "every step sent is counted and saved"
    assert state.dropped_steps == 0, "SAC trains on experiences of any policy lag"
    # Exactly ML-Agents' count of gradient steps for the steps taken in, whether 1 or 3 EnvActors fed it.
    assert played.gradient_steps() == {due_gradient_steps(state.step, steps_per_update)}
    # New weights at least every 32 gradient steps (one version per update call).
    assert state.version >= max(2, due_gradient_steps(state.step, steps_per_update) / 32)
    # Along the way the summaries say the same: each is the mean over the period's update calls that ended caught up
    # of (update_steps - 1) / (step - init), which is 1 / steps_per_update less at most one step in (step - init).
    ratios = [(s["step"], round(s[UPDATES_PER_STEP], 3)) for s in played.summaries if UPDATES_PER_STEP in s]
    print(f"\n{num_envs} EnvActors: {state.step} steps, version {state.version}, Updates per Step {ratios}")
    assert len(ratios) >= 3, played.summaries
    for step, ratio in ratios:
        if step >= 1500:
            assert 0.95 / steps_per_update <= ratio <= 1 / steps_per_update, ratios
    # The learner saved a checkpoint but no replay buffer: save_replay_buffer is off.
    assert (played.behavior_folder / LATEST_CHECKPOINT).is_file()
    assert not (played.behavior_folder / REPLAY_BUFFER).exists()


@pytest.mark.timeout(150)
def test_the_env_actors_wait_while_the_learner_catches_up(local_ray: None, tmp_path: Path) -> None:
    # Four gradient steps due per agent step: the learner cannot keep up with three players.
    steps_per_update = 0.25
    played = play_sac(tmp_path, 3, steps_per_update, min_steps=600, max_rounds=400)
    (state,) = played.progress.behaviors
    assert state.step == played.sent == played.saved_step
    assert played.progress.throttled_s > 0, "the submits waited while the learner ran the gradient steps due"
    # Throttled, not drifting: the count of gradient steps is still exactly the rule's, and the EnvActors got new
    # weights at least every 32 gradient steps while they waited.
    due = due_gradient_steps(state.step, steps_per_update)
    throttled = played.progress.throttled_s
    print(f"\nthrottled {throttled:.1f} s: {state.step} steps, {due} gradient steps, version {state.version}")
    assert played.gradient_steps() == {due}
    assert state.version >= due / 32
