"""The run options schema: the ML-Agents trainer YAML plus cluster settings."""
