"""Adapters that turn other simulators' environments into scenes of the simulation host.

- ``gymnasium``: any registered Gymnasium environment as a scene with one agent per area (``gymnasium_scene``,
  ``scene_from_id`` for ``gym:<env id>`` scene names); ``spaces`` converts Gymnasium spaces to sensors and
  actions, ``parameters`` applies environment parameters by name, ``wrappers`` holds the Gymnasium wrappers the
  named scenes use.
- ``decision_period``: ``DecisionPeriodArea`` / ``with_decision_period``, agents deciding every k-th request
  and repeating their last action in between, for any scene.
- ``pettingzoo``: PettingZoo environments (several agents per area).

Each module is imported on its own, so a scene loads only the simulator it runs.
"""
