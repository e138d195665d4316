"""A local stand-in for Customer.io's Track API, for development, tests and the benchmark."""

from __future__ import annotations

from worker.emulator.client import EmulatorClient
from worker.emulator.faults import FaultConfig
from worker.emulator.server import EmulatorServer

__all__ = ["EmulatorClient", "EmulatorServer", "FaultConfig"]
