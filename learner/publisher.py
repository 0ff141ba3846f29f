"""What every behavior id plays: weights versions put into Ray's object store once and handed out per id.

A trainer makes versions (one per update); an EnvActor plays behavior ids (``Name?team=N``). The publisher keeps,
per behavior id, the :class:`WeightsNotice` of what it plays now, with a publication number that counts what that
id was handed (an EnvActor loads a notice whose publication is newer than what it has). Every id of a behavior plays
its trainer's latest version today; handing one team an older snapshot (self-play) is a publication too.
"""

from __future__ import annotations

from collections.abc import Callable

import ray

from rayagents.configs.behaviors import behavior_name_of
from rayagents.learner.weights import PolicyWeights
from rayagents.protocol.types import BehaviorName
from rayagents.protocol.weights import WeightsNotice

Snapshot = Callable[[], PolicyWeights]
"""Makes the weights of the version being published (called only for a version not put yet)."""


class WeightsPublisher:
    """The weights each behavior id plays, and the object references they travel by."""

    def __init__(self) -> None:
        self._ids: dict[str, list[BehaviorName]] = {}
        self._latest: dict[str, tuple[int, object]] = {}
        self._publications: dict[BehaviorName, WeightsNotice] = {}
        self._notices: tuple[WeightsNotice, ...] = ()

    @property
    def notices(self) -> tuple[WeightsNotice, ...]:
        """What every behavior id plays now (replaced whole at each publication: safe to read from any thread)."""
        return self._notices

    def add(self, behavior: BehaviorName, version: int, snapshot: Snapshot) -> WeightsNotice:
        """Starts publishing to ``behavior`` (nothing new for a known id) what its trainer is at: ``version``, whose
        weights ``snapshot`` makes."""
        name = behavior_name_of(behavior)
        ids = self._ids.setdefault(name, [])
        if behavior not in ids:
            ids.append(behavior)
            self.publish(name, version, snapshot)
        return self._publications[behavior]

    def publish(self, name: str, version: int, snapshot: Snapshot) -> None:
        """Hands ``version`` to every id of behavior ``name`` that does not play it yet: one snapshot and one
        ``ray.put`` per version, and the next publication number of each id."""
        latest, ref = self._latest.get(name, (-1, None))
        if latest != version:
            weights = snapshot()
            ref = ray.put(weights)
            self._latest[name] = (version, ref)
        for behavior in self._ids.get(name, ()):
            previous = self._publications.get(behavior)
            if previous is not None and previous.version == version:
                continue
            publication = previous.publication + 1 if previous is not None else 0
            self._publications[behavior] = WeightsNotice(behavior, publication, version, ref)
        self._notices = tuple(self._publications.values())
