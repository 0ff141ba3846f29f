"""``python -m rayagents.sims``: the same as ``rayagents-sim``."""

from rayagents.sims.cli import main

raise SystemExit(main())
