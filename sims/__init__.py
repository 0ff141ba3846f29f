"""The Unity end of the wire: the simulation host (rayagents-sim) and its scenes."""
