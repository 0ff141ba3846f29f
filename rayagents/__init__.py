"""rayagents: distributed Unity ML-Agents training on Ray."""

__version__ = "0.1.0"
