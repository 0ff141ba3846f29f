"""``demo_path`` as the learner reads it: GAIL's and behavioral cloning's demonstrations, made absolute on the
driver (the learner's working folder is not the user's) and checked before the cluster starts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from rayagents.configs import RunOptions, TrainerSettings
from rayagents.configs.reward_signals import GAILSettings
from rayagents.learner.results_storage import absolute_location, is_uri

def _resolved(settings: TrainerSettings) -> TrainerSettings:
    signals = {
        kind: dataclasses.replace(signal, demo_path=absolute_location(signal.demo_path))
        if isinstance(signal, GAILSettings)
        else signal
        for kind, signal in settings.reward_signals.items()
    }
    cloning = settings.behavioral_cloning
    if cloning is not None:
        cloning = dataclasses.replace(cloning, demo_path=absolute_location(cloning.demo_path))
    return dataclasses.replace(settings, reward_signals=signals, behavioral_cloning=cloning)


def resolve_demo_paths(options: RunOptions) -> RunOptions:
    """``options`` with every plain ``demo_path`` made absolute from the driver's working folder (URIs as given)."""
    default = options.default_settings
    return dataclasses.replace(
        options,
        default_settings=None if default is None else _resolved(default),
        behaviors={name: _resolved(settings) for name, settings in options.behaviors.items()},
    )


def _demo_paths(options: RunOptions) -> Iterator[tuple[str, str]]:
    """(where in the YAML, demo_path) for every demonstration a behavior reads."""
    for name, settings in options.behaviors.items():
        for kind, signal in settings.reward_signals.items():
            if isinstance(signal, GAILSettings):
                yield f"behaviors.{name}.reward_signals.{kind.value}.demo_path", signal.demo_path
        if settings.behavioral_cloning is not None:
            yield f"behaviors.{name}.behavioral_cloning.demo_path", settings.behavioral_cloning.demo_path


def missing_demo_warnings(options: RunOptions) -> list[str]:
    """A warning for each plain ``demo_path`` that is not on this machine: the learner reads it on its node, so it
    may be there only (a URI is read wherever the learner runs and is not checked here)."""
    warnings = []
    for key, path in _demo_paths(options):
        if not is_uri(path) and not Path(path).exists():
            warnings.append(
                f"{key}: no demonstration at {path} on this machine; the learner reads it on its node, so it must be "
                "there at this path (record one with: rayagents-sim record SCENE --model RUN/Behavior.onnx "
                "--episodes 20 --out PATH, or give a URI every node can read, s3://... or gs://...)"
            )
    return warnings
