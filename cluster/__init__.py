"""The driver: CLI, Ray connection, placement, supervision, results storage, statistics."""
