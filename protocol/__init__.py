"""Everything that crosses a process boundary: the ML-Agents communicator protocol (API 1.5.0) and its numpy view."""
