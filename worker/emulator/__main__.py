"""``python -m worker.emulator``: the same as ``cio-relay emulator``."""

from __future__ import annotations

import sys

from worker.emulator.commands import main

sys.exit(main())
