"""Stage tests use the session emulator (tests/fixtures/emulator.py)."""

from tests.fixtures.emulator import emu, emulator

__all__ = ["emu", "emulator"]
