"""The command line of ``rayagents-learn``: every ``mlagents-learn`` option, the cluster options, ``--dry-run``.

The options keep mlagents-learn's names, defaults and meaning. A value given on the command line beats the
trainer YAML, and only a value that was given does: `parse_command_line` parses twice, once with the defaults
(for the values) and once with every default suppressed (to learn which options were typed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence

from rayagents.actors.environment import DEFAULT_EDITOR_PORT
from rayagents.actors.player import SIM_PREFIX
from rayagents.configs import override_dests

PROG = "rayagents-learn"
"""The program name shown in usage and error lines."""

REMOVED_FLAGS: tuple[str, ...] = ("--torch", "--tensorflow")
"""Flags mlagents-learn removed; accepted, ignored with a warning."""


@dataclasses.dataclass(frozen=True)
class CommandLine:
    """A parsed ``rayagents-learn`` command line."""

    trainer_config_path: str | None
    """The trainer configuration YAML; None when none was given (every behavior gets the defaults)."""

    explicit: Mapping[str, object]
    """The run options given on the command line, by argparse dest (the RunOptions field name)."""

    dry_run: bool
    """Validate and print the resolved options instead of training."""

    removed_flags: tuple[str, ...]
    """The removed flags that were given (`--torch`, `--tensorflow`)."""


def _json_object(text: str, fits: Callable[[object], bool], what: str, example: str) -> dict[str, object]:
    """A command-line JSON object whose values all ``fits``; ``what`` and ``example`` word the error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid JSON ({error.msg}); write a JSON object such as '{example}'"
        ) from None
    if not isinstance(value, dict) or not all(fits(item) for item in value.values()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object of {what}; write e.g. '{example}'")
    return {str(name): item for name, item in value.items()}


def _json_resources(text: str) -> dict[str, float]:
    """`--env-actor-resources` as a mapping of Ray resource names to amounts."""
    value = _json_object(
        text,
        lambda amount: isinstance(amount, (int, float)) and not isinstance(amount, bool),
        "resource names to numbers",
        '{"unity": 1}',
    )
    return {name: float(amount) for name, amount in value.items()}  # type: ignore[arg-type]


def _json_labels(text: str) -> dict[str, str]:
    """`--env-actor-labels` / `--learner-labels` as a Ray label selector: node label names to values."""
    value = _json_object(
        text, lambda label: isinstance(label, str), "label names to strings", '{"rayagents/role": "player"}'
    )
    return {name: str(label) for name, label in value.items()}


def _gpus(text: str) -> float | str:
    """`--learner-num-gpus`: a number of GPUs, or "auto"."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GPUs; write e.g. 1, 0.5 or auto") from None


def _placement(text: str) -> str:
    """`--env-placement`, case-insensitively."""
    return text.strip().upper()


def build_parser(*, detect_explicit: bool = False) -> argparse.ArgumentParser:
    """The ``rayagents-learn`` argument parser (mlagents-learn's options, plus the cluster options).

    With `detect_explicit`, every option's default is suppressed, so the namespace holds only the options
    that were typed; `parse_command_line` uses it to tell a typed value from a default."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if detect_explicit else value

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train Unity ML-Agents behaviors with reinforcement learning, on a Ray cluster or on this "
        "machine. Takes the same options and trainer YAML as mlagents-learn; an option given here beats the "
        "YAML's value.",
    )
    parser.add_argument(
        "trainer_config_path",
        nargs="?",
        default=default(None),
        help="the trainer configuration YAML (as for mlagents-learn); without it every behavior is trained with "
        "the default settings",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=default(False),
        help="check the configuration and print the options the run would use (the configuration.yaml it "
        "would write), then exit without training",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--run-id",
        dest="run_id",
        default=default("ppo"),
        help="name of this run: its results (checkpoints, models, statistics) go to RESULTS_DIR/RUN_ID",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        default=default(False),
        help="resume the run RUN_ID from its last checkpoint (the step count carries on)",
    )
    run.add_argument("--load", dest="load_model", action="store_true", default=default(False), help=argparse.SUPPRESS)
    run.add_argument(
        "--force",
        action="store_true",
        default=default(False),
        help="overwrite the results of an earlier run with the same RUN_ID",
    )
    run.add_argument(
        "--initialize-from",
        dest="initialize_from",
        metavar="RUN_ID",
        default=default(None),
        help="start this run's models from the checkpoints of the earlier run RUN_ID (the step count starts at 0)",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=default(-1),
        help="random seed of the run; -1 picks a random one",
    )
    run.add_argument(
        "--inference",
        action="store_true",
        default=default(False),
        help="run the policies without training them",
    )
    run.add_argument("--train", dest="train_model", action="store_true", default=default(False), help=argparse.SUPPRESS)
    run.add_argument(
        "--deterministic",
        action="store_true",
        default=default(False),
        help="act with each policy's most likely action instead of sampling (sets network_settings.deterministic "
        "of every behavior)",
    )
    run.add_argument(
        "--results-dir",
        dest="results_dir",
        default=default("results"),
        help="folder that holds the results of the runs, or a URI (s3://bucket/results, gs://..., file://...) "
        "that the driver and the learner write to directly",
    )
    run.add_argument("--debug", action="store_true", default=default(False), help="log at debug level")
    for flag in REMOVED_FLAGS:
        run.add_argument(
            flag,
            dest=flag.lstrip("-"),
            action="store_true",
            default=default(False),
            help="removed: PyTorch is always used; the flag is ignored with a warning",
        )

    env = parser.add_argument_group("environment")
    env.add_argument(
        "--env",
        dest="env_path",
        default=default(None),
        help=f"the environment to train in: the path of a Unity player build, or {SIM_PREFIX}NAME for a scene of "
        f"the bundled simulation host (see `rayagents-sim list`); omitted, the trainer waits for the Unity Editor "
        f"on port {DEFAULT_EDITOR_PORT} (press Play)",
    )
    env.add_argument(
        "--env-args",
        dest="env_args",
        nargs=argparse.REMAINDER,
        metavar="ARG",
        default=default(None),
        help="arguments passed to every player; everything after --env-args is taken, so put it last",
    )
    env.add_argument(
        "--num-envs",
        dest="num_envs",
        type=int,
        default=default(1),
        help="number of players run at once, spread over the cluster's machines",
    )
    env.add_argument(
        "--num-areas",
        dest="num_areas",
        type=int,
        default=default(1),
        help="number of training areas each player creates (at least 1)",
    )
    env.add_argument(
        "--base-port",
        dest="base_port",
        type=int,
        default=default(5005),
        help="first port of the players; kept for compatibility, as each player gets a free port of its own",
    )
    env.add_argument(
        "--timeout-wait",
        dest="timeout_wait",
        type=int,
        default=default(60),
        help="seconds to wait for a player to start and connect",
    )
    env.add_argument(
        "--max-lifetime-restarts",
        dest="max_lifetime_restarts",
        type=int,
        default=default(10),
        help="how many times a crashed player is restarted over the run; -1 means without limit",
    )
    env.add_argument(
        "--restarts-rate-limit-n",
        dest="restarts_rate_limit_n",
        type=int,
        default=default(1),
        help="how many restarts of a player are allowed within --restarts-rate-limit-period-s; -1 means "
        "without limit",
    )
    env.add_argument(
        "--restarts-rate-limit-period-s",
        dest="restarts_rate_limit_period_s",
        type=int,
        default=default(60),
        help="period in seconds of the restart rate limit",
    )

    engine = parser.add_argument_group("engine (sent to every player)")
    engine.add_argument("--width", type=int, default=default(84), help="width of the player's window, in pixels")
    engine.add_argument("--height", type=int, default=default(84), help="height of the player's window, in pixels")
    engine.add_argument(
        "--quality-level", dest="quality_level", type=int, default=default(5), help="Unity quality level"
    )
    engine.add_argument(
        "--time-scale",
        dest="time_scale",
        type=float,
        default=default(20.0),
        help="how much faster than real time the simulation runs",
    )
    engine.add_argument(
        "--target-frame-rate",
        dest="target_frame_rate",
        type=int,
        default=default(-1),
        help="frame rate the player aims for; -1 means as fast as it can",
    )
    engine.add_argument(
        "--capture-frame-rate",
        dest="capture_frame_rate",
        type=int,
        default=default(60),
        help="frame rate Unity's Time.captureFramerate is set to",
    )
    engine.add_argument(
        "--no-graphics",
        dest="no_graphics",
        action="store_true",
        default=default(False),
        help="run the players without graphics (no camera observations)",
    )
    engine.add_argument(
        "--no-graphics-monitor",
        dest="no_graphics_monitor",
        action="store_true",
        default=default(False),
        help="run the players without a window, keeping graphics for camera observations",
    )

    torch = parser.add_argument_group("torch")
    torch.add_argument(
        "--torch-device",
        dest="device",
        default=default(None),
        help='torch device to train on, e.g. "cpu" or "cuda:0"; omitted, "cuda" when there is a GPU, else "cpu"',
    )

    cluster = parser.add_argument_group("cluster (cluster_settings in the YAML)")
    cluster.add_argument(
        "--address",
        default=default(None),
        help='Ray cluster to run on: "auto" (the cluster this machine belongs to) or "ray://HOST:10001"; '
        "omitted, RAY_ADDRESS if it is set, else a new Ray cluster on this machine",
    )
    cluster.add_argument(
        "--num-cpus-per-env-actor",
        "--env-actor-cpus",
        dest="num_cpus_per_env_actor",
        metavar="CPUS",
        type=float,
        default=default(1.0),
        help="CPUs Ray reserves for each player (and its policy inference)",
    )
    cluster.add_argument(
        "--env-actor-resources",
        dest="env_actor_resources",
        type=_json_resources,
        metavar="JSON",
        default=default({}),
        help='custom Ray resources each player needs, as JSON, e.g. \'{"unity": 1}\' to keep players on the '
        "machines that have Unity builds",
    )
    cluster.add_argument(
        "--env-actor-labels",
        dest="env_actor_labels",
        type=_json_labels,
        metavar="JSON",
        default=default({}),
        help='Ray node labels a player\'s machine must have, as JSON, e.g. \'{"rayagents/role": "player"}\' '
        "(nodes get labels with ray start --labels)",
    )
    cluster.add_argument(
        "--learner-labels",
        dest="learner_labels",
        type=_json_labels,
        metavar="JSON",
        default=default({}),
        help="Ray node labels the learner's machine must have, as JSON",
    )
    cluster.add_argument(
        "--env-placement",
        dest="env_placement",
        type=_placement,
        choices=("SPREAD", "DEFAULT"),
        default=default("SPREAD"),
        help="how Ray places the players: SPREAD over the machines, or DEFAULT (Ray's own choice)",
    )
    cluster.add_argument(
        "--learner-num-cpus",
        "--learner-cpus",
        dest="learner_num_cpus",
        metavar="CPUS",
        type=float,
        default=default(1.0),
        help="CPUs Ray reserves for the learner",
    )
    cluster.add_argument(
        "--learner-num-gpus",
        "--learner-gpus",
        dest="learner_num_gpus",
        metavar="GPUS",
        type=_gpus,
        default=default(None),
        help="GPUs Ray reserves for the learner, or auto; omitted (auto), 1 when the cluster has a GPU, else 0",
    )
    cluster.add_argument(
        "--learner-device",
        dest="learner_device",
        metavar="DEVICE",
        default=default(None),
        help="torch device of the learner; omitted, the --torch-device (or its default)",
    )
    cluster.add_argument(
        "--min-envs",
        dest="min_envs",
        metavar="N",
        type=int,
        default=default(None),
        help="fewest running players training goes on with: it starts when this many are up and pauses while "
        "fewer are; omitted, 1",
    )
    cluster.add_argument(
        "--learner-max-restarts",
        dest="learner_max_restarts",
        metavar="N",
        type=int,
        default=default(3),
        help="how often a lost learner is restarted from the latest checkpoint (-1: no bound; 0: end the run)",
    )
    return parser


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """The command line `argv` (without the program name), with the options that were typed told apart.

    Raises SystemExit (as argparse does) for a command line argparse rejects, and for `--help`."""
    values = build_parser().parse_args(list(argv))
    given = vars(build_parser(detect_explicit=True).parse_args(list(argv)))
    runs = set(override_dests())
    return CommandLine(
        trainer_config_path=values.trainer_config_path,
        explicit={dest: getattr(values, dest) for dest in given if dest in runs},
        dry_run=bool(values.dry_run),
        removed_flags=tuple(flag for flag in REMOVED_FLAGS if flag.lstrip("-") in given),
    )


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The flag the user typed for each run option, by argparse dest (`env_path` -> `--env`)."""
    names: dict[str, str] = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        if action.option_strings and action.dest not in names:
            names[action.dest] = action.option_strings[0]
    return names


def with_user_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """`message` with flags spelled from dests (`--env-path`, `--device`) replaced by the real ones."""
    for dest, flag in flag_names(parser).items():
        spelled = "--" + dest.replace("_", "-")
        if spelled != flag:
            message = re.sub(rf"(?<![\w-]){re.escape(spelled)}(?![\w-])", flag, message)
    return message
