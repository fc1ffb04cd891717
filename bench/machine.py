"""What machine a benchmark ran on, recorded with every result file (the helpers live in encoders.machine)."""
from __future__ import annotations

from encoders.machine import cpu_model, machine_info

__all__ = ["cpu_model", "machine_info"]
