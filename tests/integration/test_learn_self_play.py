"""Self-play end to end: ``rayagents-learn`` on the simulation host's ConnectFour (one behavior, two teams) with a
small ``self_play`` schedule, then ``--resume``.

The runs are the real command line on a local Ray cluster (2 EnvActors x 2 areas, simulation-host players); the
test reads what a user reads: the console's ``ELO:``, TensorBoard's ``Self-play/ELO``, ``training_status.json``'s
``elo``, and the league saved in ``checkpoint.pt`` (loaded with ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from learn_runs import run_learn

from rayagents.cluster.tensorboard import read_scalars

pytestmark = pytest.mark.slow

BEHAVIOR = "ConnectFour"
SUMMARY_FREQ = 1000
SELF_PLAY = {"save_steps": 400, "team_change": 1200, "swap_steps": 300, "window": 3,
             "play_against_latest_model_ratio": 0.5, "initial_elo": 1200.0}  # fmt: skip
ELO_LINE = re.compile(r"^ConnectFour\. Step: (\d+)\. .*Training\. ELO: ([\d.]+)\.$", re.MULTILINE)


def config(max_steps: int) -> dict[str, object]:
    return {
        "behaviors": {
            BEHAVIOR: {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 64, "buffer_size": 256, "num_epoch": 2},
                "network_settings": {"hidden_units": 32, "num_layers": 1, "vis_encode_type": "match3"},
                "max_steps": max_steps,
                "summary_freq": SUMMARY_FREQ,
                "checkpoint_interval": SUMMARY_FREQ,
                "time_horizon": 32,
                "self_play": SELF_PLAY,
            }
        }
    }


def learn(work: Path, max_steps: int, *more: str) -> tuple[int, str]:
    path = work / f"c4-{max_steps}.yaml"
    path.write_text(yaml.safe_dump(config(max_steps)))
    args = [str(path), "--env", "sim:ConnectFour", "--num-envs", "2", "--num-areas", "2", "--seed", "3",
            "--results-dir", str(work / "results"), "--run-id", "c4", *more]  # fmt: skip
    return run_learn(args, work, name=f"c4-{max_steps}")


def league(run: Path) -> dict[str, torch.Tensor]:
    saved = torch.load(run / BEHAVIOR / "checkpoint.pt", weights_only=True)
    return saved["SelfPlay"]


def test_connect_four_self_play_reports_elo_changes_teams_and_resumes_the_league(tmp_path: Path) -> None:
    code, output = learn(tmp_path, 3000)
    assert code == 0, output
    run = tmp_path / "results" / "c4"
    elo_lines = [(int(step), float(elo)) for step, elo in ELO_LINE.findall(output)]
    assert [step for step, _ in elo_lines] == [1000, 2000, 3000], output
    scalars = read_scalars(run / BEHAVIOR)
    tensorboard_elo = scalars["Self-play/ELO"]
    assert [step for step, _ in tensorboard_elo] == [1000, 2000, 3000]
    # TensorBoard keeps float32 (about 0.0001 apart near 1,200) and the console prints 3 decimals: the same ELO
    # within both.
    assert [value for _, value in tensorboard_elo] == pytest.approx([elo for _, elo in elo_lines], abs=1e-3)
    status = json.loads((run / "run_logs" / "training_status.json").read_text())

    # Only the learning team's steps count; the other team's are ghost steps, not dropped ones (a few in flight at
    # each team change are acted by weights too old to train on).
    saved = league(run)
    changes, learning_team = (int(x) for x in saved["rotation"][:2])
    ghost_step = int(saved["counters"][2])
    dropped = sum(value for _, value in scalars["Policy/Dropped Steps"])
    assert changes >= 2 and learning_team in (0, 1), saved["rotation"]
    assert ghost_step >= 2000, ghost_step  # about as many as the learning team's 3,000
    assert dropped < 300, dropped
    snapshots = int(saved["counters"][6])
    assert snapshots == 3, saved["counters"]  # the window is full: 3,000 steps / save_steps 400
    elos = saved["elos"].tolist()
    assert elos[-1] == pytest.approx(status[BEHAVIOR]["elo"])  # the ELO saved with the final checkpoint

    code, output = learn(tmp_path, 5000, "--resume")
    assert code == 0, output
    resumed_lines = [(int(step), float(elo)) for step, elo in ELO_LINE.findall(output)]
    assert [step for step, _ in resumed_lines] == [4000, 5000], output
    # The league goes on: the ratings start from the saved ones (ELO moves by less than a point per game), and
    # the rotation and the ghost steps continue from where they were.
    assert abs(resumed_lines[0][1] - elos[-1]) < 20.0, (resumed_lines, elos)
    after = league(run)
    assert int(after["rotation"][0]) > changes
    assert int(after["counters"][2]) > ghost_step
