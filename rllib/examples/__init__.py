"""Runnable examples of RLlib on the simulation host's scenes through the wire (``python -m ...``)."""
