"""The error and warning that every part of configuration loading raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A trainer configuration that cannot be used: says what was wrong, where, and what to do."""


class ConfigWarning(UserWarning):
    """A trainer configuration that works but holds something the user likely did not mean."""
