"""What ``rayagents-learn`` says and does when checkpoints or a run go wrong, as a user sees it.

- ``--resume`` over a damaged ``checkpoint.pt`` names the file, restores the newest readable ``<behavior>-<step>.pt``
  instead, and trains on from its step.
- A run whose player fails before the first policy update says that nothing was learned, rather than that what was
  learned is saved.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from learn_runs import CARTPOLE, cartpole_args, run_learn, write_cartpole_config

pytestmark = pytest.mark.slow

PLAYER_SOURCE = Path(__file__).resolve().parents[1] / "players" / "scripted_player.py"


def test_resume_over_a_damaged_checkpoint_restores_the_newest_readable_one(tmp_path: Path) -> None:
    config = write_cartpole_config(tmp_path / "cartpole.yaml", max_steps=3000, keep_checkpoints=5)
    code, output = run_learn(cartpole_args(config, tmp_path / "results", "damaged"), tmp_path, name="first")
    assert code == 0, output
    folder = tmp_path / "results" / "damaged" / CARTPOLE
    numbered = sorted(folder.glob(f"{CARTPOLE}-*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert len(numbered) >= 2, sorted(p.name for p in folder.iterdir())
    newest, readable = numbered[-1], numbered[-2]
    (folder / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint any more")
    newest.write_bytes(newest.read_bytes()[:64])  # the newest numbered one is cut short too
    step = int(readable.stem.rsplit("-", 1)[1])

    more = write_cartpole_config(tmp_path / "more.yaml", max_steps=step + 2000, keep_checkpoints=5)
    code, output = run_learn(cartpole_args(more, tmp_path / "results", "damaged", "--resume"), tmp_path, name="resumed")
    assert code == 0, output
    assert f"checkpoint {folder / 'checkpoint.pt'} cannot be read" in output
    assert f"checkpoint {newest} cannot be read" in output
    assert f"restored from {readable} instead" in output
    steps = [int(line.split("Step: ")[1].split(".")[0]) for line in output.splitlines() if " Step: " in line]
    assert steps and steps[0] > step  # trained on from the restored step
    status = json.loads((tmp_path / "results" / "damaged" / "run_logs" / "training_status.json").read_text())
    assert status[CARTPOLE]["final_checkpoint"]["steps"] >= step + 2000


def test_a_run_that_fails_before_its_first_update_says_nothing_was_learned(tmp_path: Path) -> None:
    player = tmp_path / "Player.x86_64"
    player.write_text(f"#!{sys.executable}\n" + PLAYER_SOURCE.read_text().split("\n", 1)[1])
    player.chmod(0o755)
    config = tmp_path / "ball.yaml"
    config.write_text("behaviors:\n  Ball:\n    trainer_type: ppo\n    max_steps: 1000\n")
    args = [
        str(config), "--env", str(player), "--env-args", "--mode", "crash_mid_run", "--num-envs", "1",
        "--max-lifetime-restarts", "0", "--results-dir", str(tmp_path / "results"), "--run-id", "crash",
    ]  # fmt: skip
    code, output = run_learn(args, tmp_path)
    assert code == 1, output
    assert "is not restarted again" in output
    assert "The run failed before its first policy update: nothing was learned" in output
    assert "What was learned up to the failure is saved" not in output
