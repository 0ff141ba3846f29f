"""``rayagents-learn``: mlagents-learn's command line, for training on a Ray cluster.

The options resolve as mlagents-learn resolves them: the trainer YAML (or the defaults), then every option
that was given on the command line laid over it, then resume against initialize_from (an explicitly given
flag wins; from the YAML alone, resume wins). `--seed -1` stays -1: the run picks the random seed.

``--dry-run`` validates and prints the resolved options as the `configuration.yaml` the run would write,
with a comment line per behavior; a configuration error prints ``error: ...`` and exits 2."""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from rayagents.cluster.arguments import PROG, CommandLine, build_parser, parse_command_line, with_user_flags
from rayagents.cluster.console import ConsoleView
from rayagents.cluster.training import TrainingFailed, TrainingRun
from rayagents.cluster.demo_paths import missing_demo_warnings
from rayagents.cluster.support import behavior_summary, check_environment, environment_summary
from rayagents.configs import (
    ConfigError,
    ConfigWarning,
    RunOptions,
    apply_cli_overrides,
    dump_yaml,
    load_run_options,
)
from rayagents.learner.results_storage import redact

__all__ = [
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "options_from_command_line",
    "resolve_run_options",
    "run_program",
]

EXIT_OK = 0
"""The configuration is valid (dry run) or training finished."""

EXIT_USAGE = 2
"""A bad command line or configuration (argparse's exit code for usage errors too)."""

EXIT_FAILED = 1
"""Training stopped on an error (a player past its restart budget, a lost actor); the model was saved."""


def options_from_command_line(command_line: CommandLine) -> RunOptions:
    """The run options of a parsed command line: its YAML (or the defaults) with the typed options over it.

    Warns (ConfigWarning) for the removed and deprecated flags that were given; raises ConfigError for a
    configuration that cannot be used."""
    for flag in command_line.removed_flags:
        warnings.warn(
            f"the command-line option {flag} was removed from mlagents-learn; rayagents always trains with "
            "PyTorch, so it is ignored: leave it out",
            ConfigWarning,
            stacklevel=2,
        )
    explicit = command_line.explicit
    if explicit.get("load_model"):
        warnings.warn(
            "--load is deprecated; it is taken as --resume, so use --resume instead", ConfigWarning, stacklevel=2
        )
    if explicit.get("train_model"):
        warnings.warn(
            "--train is deprecated and has no effect: training is the default (--inference runs without "
            "training); leave it out",
            ConfigWarning,
            stacklevel=2,
        )
    options = load_run_options(command_line.trainer_config_path)
    return apply_cli_overrides(options, explicit)


def resolve_run_options(argv: Sequence[str]) -> RunOptions:
    """The run options of the ``rayagents-learn`` command line `argv` (without the program name).

    Raises ConfigError for a configuration that cannot be used, and SystemExit (as argparse does) for a
    command line argparse rejects or `--help`."""
    return options_from_command_line(parse_command_line(argv))


def _summary(options: RunOptions, config_path: str | None) -> list[str]:
    """The dry run's comment lines: the environment, then one line per configured behavior."""
    lines = [environment_summary(options.env_settings.env_path)]
    for name, settings in options.behaviors.items():
        lines.append(behavior_summary(name, settings))
    if not options.behaviors:
        source = "the trainer configuration" if config_path is not None else "no trainer configuration was given"
        lines.append(
            f"no behaviors configured ({source}): every behavior is trained with "
            f"{'default_settings' if options.default_settings is not None else 'the default settings'}"
        )
    return lines


def _validate(options: RunOptions, command_line: CommandLine) -> list[str]:
    """The checks beyond the schema: the environment and what this version can train; returns the warnings."""
    found: list[str] = []
    environment = check_environment(options.env_settings.env_path)
    if environment is not None:
        found.append(environment)
    found.extend(missing_demo_warnings(options))
    if command_line.trainer_config_path is None:
        found.append("no trainer configuration was given: every behavior is trained with the default settings")
    return found


def _resolve_recording(command_line: CommandLine, messages: list[str]) -> RunOptions:
    """options_from_command_line, with its ConfigWarnings appended to `messages` (also when it fails).

    Other warnings are passed on as they came."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            options = options_from_command_line(command_line)
        finally:
            messages.extend(str(item.message) for item in caught if issubclass(item.category, ConfigWarning))
    for item in caught:
        if not issubclass(item.category, ConfigWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return options


def _print_warnings(messages: Sequence[str], stream: TextIO) -> None:
    """Each warning once, as `warning: <message>`."""
    for message in dict.fromkeys(messages):
        print(f"warning: {message}", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rayagents-learn``; returns the exit code (0 valid, 2 a bad command line or config)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command_line = parse_command_line(args)
    except SystemExit as stop:  # argparse has printed the usage error, or the help
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or EXIT_OK
        return EXIT_USAGE
    messages: list[str] = []
    try:
        options = _resolve_recording(command_line, messages)
        messages.extend(_validate(options, command_line))
    except ConfigError as error:
        _print_warnings(messages, sys.stderr)
        print(f"error: {with_user_flags(str(error), build_parser())}", file=sys.stderr)
        return EXIT_USAGE
    _print_warnings(messages, sys.stderr)
    if command_line.dry_run:
        sys.stdout.write(dump_yaml(options))
        for line in _summary(options, command_line.trainer_config_path):
            print(f"# {line}")
        return EXIT_OK
    return _train(options, args)


def failure_summary(error: TrainingFailed, write_path: str) -> str:
    """What a failed run left behind, in one sentence for the console."""
    if not error.learned:
        return "The run failed before its first policy update: nothing was learned."
    if error.saved:
        return f"What was learned up to the failure is saved under {write_path}."
    if error.checkpoint_steps:
        steps = ", ".join(f"{name} at step {step:,}" for name, step in error.checkpoint_steps.items())
        return (
            f"The final model could not be saved; what was learned up to the last checkpoints ({steps}) is saved "
            f"under {write_path} (--resume carries on from there)."
        )
    return "The final model could not be saved and no checkpoint had been written: what was learned is lost."


def _train(options: RunOptions, args: Sequence[str]) -> int:
    """Runs the training; returns the exit code (0 trained or interrupted and saved, 1 failed, 2 refused)."""
    with ConsoleView() as view:
        try:
            run = TrainingRun(options, view, [PROG, *args])
            result = run.run()
        except ConfigError as error:
            view.log(f"error: {error}")
            return EXIT_USAGE
        except TrainingFailed as error:
            view.log(f"error: {error}")
            view.log(failure_summary(error, redact(run.write_path)))
            return EXIT_FAILED
        for name, model in result.models.items():
            step = result.steps.get(name, 0)
            view.log(f"{name}: the trained model is {redact(model)} (step {step})")
        if result.interrupted and not options.checkpoint_settings.inference:
            view.log(f"Training stopped early; continue it with --resume --run-id {options.checkpoint_settings.run_id}.")
    return EXIT_OK


def run_program() -> None:
    """The program ``rayagents-learn``: :func:`main`, then the process exits with its code.

    By then everything is saved and closed, so the interpreter's final garbage collection is skipped
    (``gc.freeze``): over the objects torch and Ray leave it took most of a second of every run, and the process's
    memory goes back to the system at exit either way."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run_program()
