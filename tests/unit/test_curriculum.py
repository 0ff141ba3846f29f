"""Curriculum lessons: when a parameter moves on (ML-Agents' update_lessons / need_increment, on synthetic figures),
and what the EnvActors send the player in a later lesson."""

from __future__ import annotations

import struct

import pytest

from rayagents.actors.parameters import environment_parameters_channel, lesson_values
from rayagents.cluster.curriculum import (
    BehaviorFigures,
    Curriculum,
    describe_value,
    lesson_line,
    reward_buffer_size,
)
from rayagents.configs import (
    CompletionCriteriaSettings,
    ConstantSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    Lesson,
    MeasureType,
    MultiRangeUniformSettings,
    UniformSettings,
    run_options_from_yaml_text,
)
from rayagents.protocol.side_channels import (
    EnvironmentParametersChannel,
    EnvironmentParametersReceiver,
    SideChannelManager,
)


def criteria(
    behavior: str = "Walker",
    measure: MeasureType = MeasureType.REWARD,
    threshold: float = 0.5,
    min_lesson_length: int = 0,
    signal_smoothing: bool = False,
    require_reset: bool = False,
) -> CompletionCriteriaSettings:
    return CompletionCriteriaSettings(
        behavior=behavior,
        measure=measure,
        threshold=threshold,
        min_lesson_length=min_lesson_length,
        signal_smoothing=signal_smoothing,
        require_reset=require_reset,
    )


def curriculum_of(*lessons: tuple[float, CompletionCriteriaSettings | None]) -> EnvironmentParameterSettings:
    return EnvironmentParameterSettings(
        curriculum=tuple(
            Lesson(value=ConstantSettings(value=value), name=f"L{index}", completion_criteria=done)
            for index, (value, done) in enumerate(lessons)
        )
    )


def poll(
    step: int = 0, max_steps: int = 1000, returns: tuple[float, ...] = (), behavior: str = "Walker"
) -> dict[str, BehaviorFigures]:
    return {behavior: BehaviorFigures(step=step, max_steps=max_steps, returns=returns)}


# ---- reward measure ---------------------------------------------------------------------------------------------


def test_reward_waits_for_min_lesson_length_returns_then_compares_the_buffer_mean() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=0.5, min_lesson_length=3)), (2.0, None))})
    assert c.update(poll(returns=(1.0, 1.0))) == ()  # 2 of 3 returns: nothing happens, however good
    assert c.lesson("p") == 0
    changes = c.update(poll(returns=(1.0,)))
    found = [(ch.parameter, ch.lesson, ch.name, ch.value) for ch in changes]
    assert found == [("p", 1, "L1", ConstantSettings(value=2.0))]
    assert c.lesson("p") == 1 and c.value("p") == ConstantSettings(value=2.0)


def test_the_reward_buffer_keeps_the_last_min_lesson_length_returns() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=0.5, min_lesson_length=3)), (2.0, None))})
    assert c.update(poll(returns=(10.0, 0.0, 0.0, 0.0))) == ()  # the 10 fell out: mean 0
    assert c.reward_buffer("Walker") == (0.0, 0.0, 0.0)
    assert c.update(poll(returns=(1.0,))) == ()  # (0, 0, 1): 0.33
    assert len(c.update(poll(returns=(1.0,)))) == 1  # (0, 1, 1): 0.67


def test_reward_mean_over_the_buffer_moves_on_when_above_the_threshold() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=0.5, min_lesson_length=4)), (2.0, None))})
    assert c.update(poll(returns=(0.0, 0.0, 0.0, 1.0))) == ()  # mean 0.25
    assert c.update(poll(returns=(1.0,))) == ()  # buffer (0, 0, 1, 1): mean 0.5, not above 0.5
    assert len(c.update(poll(returns=(1.0,)))) == 1  # (0, 1, 1, 1): 0.75


def test_signal_smoothing_is_a_quarter_of_the_previous_and_three_quarters_of_the_mean() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=0.8, signal_smoothing=True)), (2.0, None))})
    assert c.update(poll(returns=(1.0,))) == ()  # 0.25 * 0 + 0.75 * 1 = 0.75: the plain mean 1.0 would pass
    assert c.smoothing("p") == pytest.approx(0.75)
    assert c.update(poll(returns=(0.0,))) == ()  # buffer (0,): 0.25 * 0.75 + 0 = 0.1875
    assert c.smoothing("p") == pytest.approx(0.1875)
    c.add_returns("Walker", [1.0])  # buffer size 1 (min_lesson_length 0): (1,)
    assert c.update(poll()) == ()  # 0.25 * 0.1875 + 0.75 = 0.797
    assert len(c.update(poll())) == 1  # the same buffer evaluated again: 0.949 > 0.8


def test_smoothing_converges_on_the_buffer_mean_and_is_kept_across_lessons() -> None:
    c = Curriculum(
        {
            "p": curriculum_of(
                (1.0, criteria(threshold=0.9, signal_smoothing=True)),
                (2.0, criteria(threshold=0.99, signal_smoothing=True)),
                (3.0, None),
            )
        }
    )
    assert c.update(poll(returns=(1.0,))) == ()
    assert c.smoothing("p") == pytest.approx(0.75)
    changes = c.update(poll())  # buffer still (1.0,): 0.25 * 0.75 + 0.75 = 0.9375 > 0.9
    assert [ch.lesson for ch in changes] == [1]
    assert c.smoothing("p") == pytest.approx(0.9375)  # kept after the change
    assert c.reward_buffer("Walker") == ()  # cleared after the change
    assert c.update(poll(returns=(1.0,))) == ()  # 0.25 * 0.9375 + 0.75 = 0.984 < 0.99
    assert c.smoothing("p") == pytest.approx(0.984375)
    assert [ch.lesson for ch in c.update(poll())] == [2]  # 0.996


def test_without_smoothing_the_plain_mean_decides_and_the_smoothing_stays() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=0.9)), (2.0, None))})
    assert len(c.update(poll(returns=(0.95,)))) == 1
    assert c.smoothing("p") == 0.0


def test_reward_needs_a_return_even_with_min_lesson_length_0_and_ignores_nan() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=-10.0)), (2.0, None))})
    assert c.update(poll(step=999)) == ()  # no return yet
    assert c.update(poll(returns=(float("nan"),))) == ()
    c2 = Curriculum({"p": curriculum_of((1.0, criteria(threshold=-10.0)), (2.0, None))})
    assert len(c2.update(poll(returns=(-5.0,)))) == 1


def test_the_threshold_must_be_exceeded() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=1.0)), (2.0, None))})
    assert c.update(poll(returns=(1.0,))) == ()
    assert len(c.update(poll(returns=(1.0, 1.5)))) == 1


# ---- progress measure -------------------------------------------------------------------------------------------


def test_progress_is_step_over_max_steps_and_must_exceed_the_threshold() -> None:
    done = criteria(measure=MeasureType.PROGRESS, threshold=0.25)
    c = Curriculum({"p": curriculum_of((1.0, done), (2.0, done), (3.0, None))})
    assert c.update(poll(step=250, max_steps=1000)) == ()  # 0.25 is not above 0.25
    changes = c.update(poll(step=251, max_steps=1000))
    assert [ch.lesson for ch in changes] == [1]
    assert [ch.lesson for ch in c.update(poll(step=300, max_steps=1000))] == [2]  # one lesson per call
    assert c.update(poll(step=1000, max_steps=1000)) == ()  # never past the last lesson
    assert c.lesson("p") == 2
    assert c.lesson_scalars() == {"Environment/Lesson Number/p": 2.0}


def test_progress_also_waits_for_min_lesson_length_returns() -> None:
    done = criteria(measure=MeasureType.PROGRESS, threshold=0.1, min_lesson_length=2)
    c = Curriculum({"p": curriculum_of((1.0, done), (2.0, None))})
    assert c.update(poll(step=900, returns=(0.0,))) == ()
    assert len(c.update(poll(step=900, returns=(0.0,)))) == 1


def test_one_lesson_at_a_time_even_when_the_next_is_already_complete() -> None:
    done = criteria(measure=MeasureType.PROGRESS, threshold=0.0)
    c = Curriculum({"p": curriculum_of((1.0, done), (2.0, done), (3.0, done), (4.0, None))})
    assert [c.update(poll(step=1))[0].lesson for _ in range(3)] == [1, 2, 3]
    assert c.update(poll(step=1)) == ()


# ---- behaviors, several parameters, buffers, resets ---------------------------------------------------------------


def test_only_the_named_behaviors_figures_count_and_nothing_happens_before_it_has_a_trainer() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(behavior="Walker", threshold=0.5)), (2.0, None))})
    assert c.update(poll(returns=(9.0, 9.0), behavior="Crawler")) == ()
    assert c.reward_buffer("Walker") == ()
    done = criteria(behavior="Walker", measure=MeasureType.PROGRESS, threshold=0.0)
    progress = Curriculum({"p": curriculum_of((1.0, done), (2.0, None))})
    assert progress.update(poll(step=999, behavior="Crawler")) == ()  # Walker has no trainer yet
    assert len(progress.update({**poll(step=1, behavior="Walker"), **poll(step=0, behavior="Crawler")})) == 1


def test_every_behaviors_buffer_is_cleared_after_any_change_and_all_parameters_see_the_same_figures() -> None:
    c = Curriculum(
        {
            "a": curriculum_of((1.0, criteria(behavior="Walker", threshold=0.5)), (2.0, None)),
            "b": curriculum_of((1.0, criteria(behavior="Walker", threshold=0.7)), (2.0, None)),
            "c": curriculum_of((1.0, criteria(behavior="Crawler", threshold=5.0)), (2.0, None)),
        }
    )
    figures = {**poll(returns=(0.8,), behavior="Walker"), **poll(returns=(1.0,), behavior="Crawler")}
    changes = c.update(figures)
    assert [ch.parameter for ch in changes] == ["a", "b"]  # both judged on the same buffer, in the config's order
    assert c.reward_buffer("Walker") == () and c.reward_buffer("Crawler") == ()
    assert c.lessons == {"a": 1, "b": 1, "c": 0}


def test_no_change_keeps_the_buffers() -> None:
    c = Curriculum({"p": curriculum_of((1.0, criteria(threshold=5.0, min_lesson_length=3)), (2.0, None))})
    c.update(poll(returns=(1.0, 2.0)))
    assert c.reward_buffer("Walker") == (1.0, 2.0)


def test_the_buffer_holds_the_largest_min_lesson_length_of_the_behaviors_lessons() -> None:
    parameters = {
        "a": curriculum_of((1.0, criteria(min_lesson_length=3)), (2.0, criteria(min_lesson_length=7)), (3.0, None)),
        "b": curriculum_of((1.0, criteria(behavior="Crawler", min_lesson_length=50)), (2.0, None)),
    }
    assert reward_buffer_size(parameters, "Walker") == 7
    assert reward_buffer_size(parameters, "Crawler") == 50
    assert reward_buffer_size(parameters, "Other") == 1
    c = Curriculum(parameters)
    c.add_returns("Walker", [float(i) for i in range(10)])
    assert c.reward_buffer("Walker") == (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def test_require_reset_is_the_completed_lessons() -> None:
    c = Curriculum(
        {
            "p": curriculum_of(
                (1.0, criteria(measure=MeasureType.PROGRESS, threshold=0.1, require_reset=True)),
                (2.0, criteria(measure=MeasureType.PROGRESS, threshold=0.2)),
                (3.0, None),
            )
        }
    )
    first = c.update(poll(step=150))
    assert [(ch.lesson, ch.require_reset) for ch in first] == [(1, True)]
    second = c.update(poll(step=250))
    assert [(ch.lesson, ch.require_reset) for ch in second] == [(2, False)]


def test_a_one_lesson_parameter_never_changes_and_reports_lesson_0() -> None:
    options = run_options_from_yaml_text("environment_parameters:\n  gravity: 9.8\n")
    c = Curriculum(options.environment_parameters or {})
    assert c.update(poll(step=10**6, returns=(1e9,))) == ()
    assert c.lesson_scalars() == {"Environment/Lesson Number/gravity": 0.0}
    assert c.lines() == ["Parameter 'gravity' is in lesson 'gravity' and has value 'Float: value=9.8'."]


def test_a_resumed_curriculum_starts_in_its_saved_lessons() -> None:
    done = criteria(measure=MeasureType.PROGRESS, threshold=0.5)
    parameters = {"p": curriculum_of((1.0, done), (2.0, done), (3.0, None))}
    c = Curriculum(parameters, {"p": 1})
    assert c.lesson("p") == 1 and c.lesson_name("p") == "L1"
    assert [ch.lesson for ch in c.update(poll(step=600))] == [2]
    with pytest.raises(ValueError, match="lesson 3"):
        Curriculum(parameters, {"p": 3})


def test_a_curriculum_from_yaml_moves_through_its_lessons() -> None:
    options = run_options_from_yaml_text(
        """
environment_parameters:
  length:
    curriculum:
      - name: Short
        completion_criteria: {measure: reward, behavior: CartPole, threshold: 100, min_lesson_length: 2}
        value: 0.25
      - name: Long
        completion_criteria: {measure: progress, behavior: CartPole, threshold: 0.5, require_reset: true}
        value: {sampler_type: uniform, sampler_parameters: {min_value: 0.4, max_value: 0.6}}
      - name: Longest
        value: 1.0
"""
    )
    c = Curriculum(options.environment_parameters or {})
    assert c.update(poll(step=10, returns=(150.0,), behavior="CartPole")) == ()
    changes = c.update(poll(step=20, returns=(150.0,), behavior="CartPole"))
    assert [(ch.name, ch.require_reset) for ch in changes] == [("Long", False)]
    assert lesson_line("length", changes[0].name, changes[0].value) == (
        "Parameter 'length' is in lesson 'Long' and has value 'Uniform sampler: min=0.4, max=0.6'."
    )
    (last,) = c.update(poll(step=600, behavior="CartPole"))
    assert (last.name, last.require_reset, c.lesson("length")) == ("Longest", True, 2)


def test_values_are_described_as_ml_agents_prints_them() -> None:
    assert describe_value(ConstantSettings(value=2.0)) == "Float: value=2.0"
    assert describe_value(GaussianSettings(mean=1.0, st_dev=0.5)) == "Gaussian sampler: mean=1.0, stddev=0.5"
    assert (
        describe_value(MultiRangeUniformSettings(intervals=((0.0, 1.0), (2.0, 3.0))))
        == "MultiRangeUniform sampler: intervals=[[0.0, 1.0], [2.0, 3.0]]"
    )


# ---- what the player receives -------------------------------------------------------------------------------------


def received(channel: EnvironmentParametersChannel) -> EnvironmentParametersReceiver:
    receiver = EnvironmentParametersReceiver()
    SideChannelManager([receiver]).process_side_channel_message(
        SideChannelManager([channel]).generate_side_channel_messages()
    )
    return receiver


def test_the_channel_carries_each_parameters_value_in_its_chosen_lesson() -> None:
    parameters = {
        "length": EnvironmentParameterSettings(
            curriculum=(
                Lesson(ConstantSettings(value=0.25), "Short", criteria(measure=MeasureType.PROGRESS)),
                Lesson(ConstantSettings(value=0.75), "Long", None),
            )
        ),
        "mass": EnvironmentParameterSettings(
            curriculum=(
                Lesson(UniformSettings(min_value=1.0, max_value=2.0), "Light", criteria(measure=MeasureType.PROGRESS)),
                Lesson(UniformSettings(min_value=5.0, max_value=6.0), "Heavy", None),
            )
        ),
    }
    first = received(environment_parameters_channel(parameters, {}, run_seed=3))
    assert first.get_with_default("length", 0.0) == 0.25
    assert 1.0 <= first.get_with_default("mass", 0.0) <= 2.0
    later = received(environment_parameters_channel(parameters, {"length": 1, "mass": 1}, run_seed=3))
    assert later.get_with_default("length", 0.0) == 0.75
    assert all(5.0 <= later.get_with_default("mass", 0.0) <= 6.0 for _ in range(50))
    bytes_sent = SideChannelManager([environment_parameters_channel(parameters, {"length": 1}, 3)])
    assert struct.pack("<f", 0.75) in bytes_sent.generate_side_channel_messages()
    with pytest.raises(ValueError, match="not lesson 2"):
        environment_parameters_channel(parameters, {"length": 2}, 3)


def test_sampler_seeds_count_up_over_the_lessons_without_a_seed() -> None:
    parameters = {
        "a": EnvironmentParameterSettings(
            curriculum=(
                Lesson(UniformSettings(), "a0", criteria(measure=MeasureType.PROGRESS)),
                Lesson(UniformSettings(seed=99), "a1", criteria(measure=MeasureType.PROGRESS)),
                Lesson(GaussianSettings(), "a2", None),
            )
        ),
        "b": EnvironmentParameterSettings(curriculum=(Lesson(UniformSettings(), "b0", None),)),
    }
    assert lesson_values(parameters, {}, 10)["a"].seed == 10
    assert lesson_values(parameters, {"a": 1}, 10)["a"].seed == 99
    assert lesson_values(parameters, {"a": 2}, 10)["a"].seed == 11
    assert lesson_values(parameters, {}, 10)["b"].seed == 12


def test_env_actors_created_later_start_in_the_lessons_they_are_given() -> None:
    from rayagents.cluster.fleet import env_actor_settings

    options = run_options_from_yaml_text(
        "environment_parameters:\n  p: {curriculum: [{name: a, value: 1, completion_criteria: {behavior: B}}, "
        "{name: b, value: 2}]}\n"
    )
    assert env_actor_settings(options, 0, 7, None).lessons == {}
    settings = env_actor_settings(options, 1, 7, None, {"p": 1})
    assert settings.lessons == {"p": 1}
    value = lesson_values(settings.environment_parameters, settings.lessons, settings.seed)["p"]
    assert isinstance(value, ConstantSettings) and value.value == 2.0
