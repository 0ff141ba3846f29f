"""``rayagents-sim record``: play a scene in this process with a model or its heuristic, and write a ``.demo``.

``rayagents-sim record SCENE --episodes N (--model RUN/Behavior.onnx | --heuristic) [--out DIR/NAME.demo]
[--seed S] [--areas A] [--behavior NAME]`` runs ``A`` areas of the scene (seeded ``S``, ``S + 1``, ...) with no
trainer and no gRPC, acts for one behavior's agents with the model's deterministic actions or with the scene's
heuristic, and stops once ``N`` of their episodes have ended. The agents of other behaviors get zero actions.

With ``--out`` the finished episodes are written as a ``.demo`` file that ML-Agents' reader and rayagents' read
(the demonstration named after the file), one episode after the other as if one agent had played them, each
record the agent info the wire would have carried. Without it, the command only reports: the episodes, the
steps (agent decisions) and the mean episode reward, which is how an exported model is evaluated.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.demonstration_writer import (
    DemonstrationWriter,
    demonstration_brain_parameters,
    sanitize_demonstration_name,
)
from rayagents.protocol.demonstrations import DemonstrationMeta
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.sims.messages import ObservationEncoder, agent_info_list, player_capabilities
from rayagents.sims.policies import HeuristicPolicy, ModelError, OnnxPolicy, ScenePolicy
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, BehaviorDef, Scene
from rayagents.sims.scenes import UnknownSceneError, get_scene, scene_names, scenes_with_heuristics

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DEMO_SUFFIX = ".demo"
_CHECKPOINT_STEP = re.compile(r"-\d+$")

AgentKey = tuple[int, str]
"""An agent: its area's index and its name in the area."""


class RecordError(ValueError):
    """The command line asks for something the scene cannot do; the message says what to use instead."""


@dataclass(frozen=True)
class RecordResult:
    """What a recording played."""

    behavior: str
    """The fully qualified name of the behavior that acted."""
    returns: tuple[float, ...]
    """Each finished episode's summed reward, in the order they ended."""
    lengths: tuple[int, ...]
    """Each finished episode's steps: the agent's decisions in it."""
    meta: DemonstrationMeta | None
    """The header written, when a file was."""


def record(
    scene: Scene,
    behavior: BehaviorDef,
    policy: ScenePolicy,
    *,
    episodes: int,
    seed: int = 0,
    areas: int = 1,
    writer: DemonstrationWriter | None = None,
) -> RecordResult:
    """Plays ``areas`` areas of ``scene`` until ``episodes`` episodes of ``behavior``'s agents have ended, acting
    with ``policy``; each finished episode's infos go to ``writer`` (when given) with the actions taken on them."""
    if episodes < 1 or areas < 1:
        raise RecordError(f"--episodes and --areas must be at least 1 (got {episodes} and {areas})")
    encoder = ObservationEncoder(behavior, player_capabilities())
    parameters, stats = EnvironmentParametersReceiver(), StatsRecorder()
    made: list[Area] = []
    wire_ids: dict[AgentKey, int] = {}
    playing: dict[AgentKey, list[tuple[AgentInfoProto, AgentAction | None]]] = {}
    returns: list[float] = []
    lengths: list[int] = []
    try:
        for index in range(areas):
            made.append(scene.make_area(AreaContext(index, areas, seed + index, parameters, stats)))
        reports_by_area = [area.reset() for area in made]
        while len(returns) < episodes:
            ours: list[tuple[AgentKey, AgentReport]] = []
            actions: list[dict[str, AgentAction]] = [{} for _ in made]
            for index, reports in enumerate(reports_by_area):
                for report in reports:
                    key = (index, report.agent)
                    wire_ids.setdefault(key, len(wire_ids))
                    if report.behavior == behavior.qualified_name:
                        ours.append((key, report))
                    elif not report.done:
                        spec = scene.behavior(report.behavior).action_spec
                        empty = spec.empty_action(1)
                        actions[index][report.agent] = AgentAction(empty.continuous[0], empty.discrete[0])
            infos = agent_info_list(behavior, encoder, [wire_ids[k] for k, _ in ours], [r for _, r in ours]).value
            deciding: list[tuple[AgentKey, AgentReport, AgentInfoProto]] = []
            for (key, report), info in zip(ours, infos):
                if not report.done:
                    deciding.append((key, report, info))
                    continue
                played = playing.pop(key, [])
                policy.end_episode(key)
                if not played or len(returns) >= episodes:
                    continue  # an episode this recording did not see start, or one past those asked for
                played.append((info, None))
                returns.append(float(sum(step.reward for step, _ in played)))
                lengths.append(len(played) - 1)
                if writer is not None:
                    for step, action in played:
                        writer.record(step, *((action.continuous, action.discrete) if action else ()))
            if len(returns) >= episodes:
                break
            chosen = policy.act([key for key, _, _ in deciding], [report for _, report, _ in deciding])
            for (key, report, info), action in zip(deciding, chosen):
                playing.setdefault(key, []).append((info, action))
                actions[key[0]][report.agent] = action
            reports_by_area = [area.step(actions[index]) for index, area in enumerate(made)]
    finally:
        for area in made:
            area.close()
    meta = writer.close() if writer is not None else None
    return RecordResult(behavior.qualified_name, tuple(returns), tuple(lengths), meta)


def play_model(scene_name: str, model: str | Path, episodes: int, seed: int = 0, areas: int = 1) -> RecordResult:
    """Plays an exported model's deterministic actions in scene ``scene_name`` for ``episodes`` episodes and writes
    nothing: how a trained model is scored (``rayagents-sim record SCENE --model M`` without ``--out``). The behavior
    is the one the model file is named after, else the scene's only one."""
    scene = get_scene(scene_name)
    behavior = _behavior(scene, None, str(model))
    return record(scene, behavior, OnnxPolicy(str(model), behavior), episodes=episodes, seed=seed, areas=areas)


def main(argv: Sequence[str]) -> int:
    """``rayagents-sim record ...``; returns the exit code."""
    options = _parser().parse_args(argv)
    try:
        scene = get_scene(options.scene)
    except UnknownSceneError as error:
        print(f"rayagents-sim record: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if options.episodes < 1 or options.areas < 1:
            raise RecordError(f"--episodes and --areas must be at least 1 (got {options.episodes} and {options.areas})")
        behavior = _behavior(scene, options.behavior, options.model)
        if options.heuristic:
            if scene.heuristic is None:
                having = ", ".join(scenes_with_heuristics()) or "none"
                raise RecordError(
                    f"scene '{scene.name}' has no heuristic (scenes with one: {having}); record it with a trained "
                    "model instead: --model RUN/Behavior.onnx"
                )
            policy: ScenePolicy = HeuristicPolicy(scene.heuristic)
        else:
            policy = OnnxPolicy(options.model, behavior)
        out = _checked_out(options.out)
    except RecordError as error:
        print(f"rayagents-sim record: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ModelError as error:
        print(f"rayagents-sim record: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if out is None:
        result = record(scene, behavior, policy, episodes=options.episodes, seed=options.seed, areas=options.areas)
    else:
        result = _record_to_file(scene, behavior, policy, options, out)
    _report(result, out)
    return EXIT_OK


def _record_to_file(
    scene: Scene, behavior: BehaviorDef, policy: ScenePolicy, options: argparse.Namespace, out: Path
) -> RecordResult:
    """Records into a temporary file beside ``out``, renamed to ``out`` once complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    brain = demonstration_brain_parameters(behavior.qualified_name, behavior.action_spec)
    try:
        with temporary.open("wb") as stream:
            writer = DemonstrationWriter(stream, sanitize_demonstration_name(out.stem), brain)
            result = record(
                scene,
                behavior,
                policy,
                episodes=options.episodes,
                seed=options.seed,
                areas=options.areas,
                writer=writer,
            )
        os.replace(temporary, out)
    finally:
        if temporary.exists():
            temporary.unlink()
    return result


def _report(result: RecordResult, out: Path | None) -> None:
    """Prints the episodes, steps and mean episode reward (and the file written)."""
    returns = np.asarray(result.returns, dtype=np.float64)
    print(
        f"{result.behavior}: {len(returns)} episodes, {sum(result.lengths)} steps, mean episode reward "
        f"{returns.mean():.3f} (std {returns.std():.3f}, min {returns.min():.3f}, max {returns.max():.3f})"
    )
    if out is not None and result.meta is not None:
        print(
            f"Wrote {out}: demonstration '{result.meta.name}', {result.meta.number_steps} records "
            f"({result.meta.number_episodes} episodes, mean reward {result.meta.mean_reward:.3f})."
        )


def _behavior(scene: Scene, name: str | None, model: str | None) -> BehaviorDef:
    """The behavior to act for: ``--behavior``, else the one the model file is named after, else the only one."""
    known = ", ".join(b.name if b.team == 0 else b.qualified_name for b in scene.behaviors)
    if name is not None:
        for behavior in scene.behaviors:
            if name in (behavior.name, behavior.qualified_name):
                return behavior
        raise RecordError(f"scene '{scene.name}' has no behavior '{name}' (it has: {known})")
    if model is not None:
        stem = _CHECKPOINT_STEP.sub("", Path(model).stem)
        matching = [b for b in scene.behaviors if b.name == stem]
        if len(matching) == 1:
            return matching[0]
    if len(scene.behaviors) == 1:
        return scene.behaviors[0]
    raise RecordError(f"scene '{scene.name}' has several behaviors ({known}): choose one with --behavior")


def _checked_out(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.suffix != DEMO_SUFFIX:
        raise RecordError(f"--out must name a {DEMO_SUFFIX} file (ML-Agents reads only those), not {out}")
    if path.is_dir():
        raise RecordError(f"--out {out} is a folder: name the file, e.g. {path / ('Recording' + DEMO_SUFFIX)}")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rayagents-sim record",
        description="Play a scene with a trained model or its heuristic, report the mean episode reward, and "
        "optionally write the episodes as a .demo file for GAIL and behavioral cloning.",
    )
    parser.add_argument("scene", help=f"the scene ({', '.join(scene_names())}, or gym:<env id>)")
    parser.add_argument("--episodes", type=int, default=10, help="how many episodes to play (default 10)")
    acting = parser.add_mutually_exclusive_group(required=True)
    acting.add_argument("--model", help="an exported model (RUN/Behavior.onnx) whose deterministic actions act")
    acting.add_argument("--heuristic", action="store_true", help="act with the scene's heuristic")
    parser.add_argument("--out", help="the .demo file to write (DIR/NAME.demo); without it, only report")
    parser.add_argument("--seed", type=int, default=0, help="the seed of area 0; area i gets seed + i (default 0)")
    parser.add_argument("--areas", type=int, default=1, help="how many areas play at once (default 1)")
    parser.add_argument("--behavior", help="the behavior to act for, in a scene with several")
    return parser
