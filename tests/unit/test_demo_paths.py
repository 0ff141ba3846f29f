"""``demo_path`` on the driver: made absolute for the learner, and named when it is not on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayagents.cluster.demo_paths import missing_demo_warnings, resolve_demo_paths
from rayagents.configs import RewardSignalType, run_options_from_dict

CONFIG = {
    "default_settings": {"behavioral_cloning": {"demo_path": "demos/Default.demo"}},
    "behaviors": {
        "Walker": {
            "reward_signals": {
                "extrinsic": {},
                "gail": {"demo_path": "demos/Walker.demo"},
                "curiosity": {"strength": 0.1},
            },
            "behavioral_cloning": {"demo_path": "s3://bucket/demos/Walker.demo"},
        }
    },
}


def test_plain_demo_paths_become_absolute_from_the_working_folder_and_uris_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = resolve_demo_paths(run_options_from_dict(CONFIG))
    walker = options.behaviors["Walker"]
    assert walker.reward_signals[RewardSignalType.GAIL].demo_path == str(tmp_path / "demos" / "Walker.demo")
    assert walker.behavioral_cloning is not None
    assert walker.behavioral_cloning.demo_path == "s3://bucket/demos/Walker.demo"
    assert options.default_settings is not None and options.default_settings.behavioral_cloning is not None
    assert options.default_settings.behavioral_cloning.demo_path == str(tmp_path / "demos" / "Default.demo")
    assert walker.reward_signals[RewardSignalType.CURIOSITY].strength == 0.1  # the other signals as they were


def test_a_demo_path_missing_here_is_named_with_its_key_and_a_uri_is_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = resolve_demo_paths(run_options_from_dict(CONFIG))
    warnings = missing_demo_warnings(options)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"behaviors.Walker.reward_signals.gail.demo_path: no demonstration at {tmp_path}")
    assert "rayagents-sim record" in warnings[0]
    (tmp_path / "demos").mkdir()
    (tmp_path / "demos" / "Walker.demo").write_bytes(b"")
    assert missing_demo_warnings(options) == []
