"""What every behavior id plays: weights versions put into Ray's object store once and handed out per id.

A trainer makes versions (one per update); an EnvActor plays behavior ids (``Name?team=N``). The publisher keeps,
per behavior id, the :class:`WeightsNotice` of what it plays now, with a publication number that counts what that
id was handed (an EnvActor loads a notice whose publication is newer than what it has). An id follows its
trainer's latest version unless it is pinned to fixed weights (self-play hands the teams that do not learn a
snapshot of the policy); pinning is a publication too, and so is following again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ray

from rayagents.configs.behaviors import behavior_name_of
from rayagents.learner.weights import PolicyWeights
from rayagents.protocol.types import BehaviorName
from rayagents.protocol.weights import WeightsNotice

Snapshot = Callable[[], PolicyWeights]
"""Makes the weights of the version being published (called only for a version not put yet)."""


class WeightsPublisher:
    """The weights each behavior id plays, and the object references they travel by.

    Arguments:
        put: puts one version's weights where the EnvActors fetch them, returning the reference (``ray.put``).
    """

    def __init__(self, put: Callable[[PolicyWeights], object] = ray.put) -> None:
        self._put = put
        self._ids: dict[str, list[BehaviorName]] = {}
        self._latest: dict[str, tuple[int, object]] = {}
        self._publications: dict[BehaviorName, WeightsNotice] = {}
        self._pinned: dict[BehaviorName, PolicyWeights] = {}
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

    def notice(self, behavior: BehaviorName) -> WeightsNotice:
        """What ``behavior`` (an id already added) plays now."""
        return self._publications[behavior]

    def publish(self, name: str, version: int, snapshot: Snapshot) -> None:
        """Hands ``version`` to every id of behavior ``name`` that follows the latest and does not play it yet: one
        snapshot and one ``ray.put`` per version, and the next publication number of each id."""
        ref = self._latest_ref(name, version, snapshot)
        for behavior in self._ids.get(name, ()):
            if behavior not in self._pinned:
                self._hand(behavior, version, ref)
        self._notices = tuple(self._publications.values())

    def follow(self, behavior: BehaviorName, version: int, snapshot: Snapshot) -> None:
        """``behavior`` (an id already added) follows its trainer's latest version again, from ``version`` on."""
        forced = self._pinned.pop(behavior, None) is not None
        self._hand(behavior, version, self._latest_ref(behavior_name_of(behavior), version, snapshot), force=forced)
        self._notices = tuple(self._publications.values())

    def pin(self, behaviors: Sequence[BehaviorName], weights: PolicyWeights) -> None:
        """Hands ``weights`` (one ``ray.put``) to ``behaviors`` (ids already added), which keep them until pinned
        anew or told to follow; an id pinned to these very weights already is left as it is."""
        ref: object | None = None
        for behavior in behaviors:
            if self._pinned.get(behavior) is weights:
                continue
            self._pinned[behavior] = weights
            ref = self._put(weights) if ref is None else ref
            self._hand(behavior, weights.version, ref, force=True)
        self._notices = tuple(self._publications.values())

    def _latest_ref(self, name: str, version: int, snapshot: Snapshot) -> object:
        latest, ref = self._latest.get(name, (-1, None))
        if latest != version:
            ref = self._put(snapshot())
            self._latest[name] = (version, ref)
        return ref

    def _hand(self, behavior: BehaviorName, version: int, ref: object, force: bool = False) -> None:
        """The next publication of ``behavior``: ``version`` at ``ref`` (unless it plays that version already and
        ``force`` is off: a pinned snapshot's version number may equal one of the latest's)."""
        previous = self._publications.get(behavior)
        if previous is not None and previous.version == version and not force:
            return
        publication = previous.publication + 1 if previous is not None else 0
        self._publications[behavior] = WeightsNotice(behavior, publication, version, ref)
