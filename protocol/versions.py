"""Versions exchanged in the handshake, and the rule that decides whether two ends can talk."""

from __future__ import annotations

API_VERSION = "1.5.0"
"""The communicator API version this side speaks (``communication_version``)."""

PACKAGE_VERSION = "1.1.0"
"""The trainer package version sent to Unity (the ``mlagents_envs`` release whose protocol we speak)."""

UNITY_PACKAGE_VERSION = "3.0.0"
"""The ``com.unity.ml-agents`` version the simulation host reports (the release that speaks API 1.5.0)."""


def _parse(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        raise ValueError(f"communication version {version!r} is not of the form MAJOR.MINOR.PATCH") from None


def is_compatible(unity_version: str, trainer_version: str = API_VERSION) -> bool:
    """ML-Agents' rule: with a Unity major of 0, major and minor must match; otherwise the majors must."""
    unity = _parse(unity_version)
    trainer = _parse(trainer_version)
    if unity[0] == 0:
        return unity[:2] == trainer[:2]
    return unity[0] == trainer[0]
