"""The benchmarks behind the README's performance table; run them all with ``python -m bench``."""
