"""What this machine (or this job's share of it) offers: cores and memory. Imports nothing heavy."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on: a SLURM job's allocation (SLURM_CPUS_PER_TASK), else its CPU affinity
    (taskset, cgroups), else the machine's."""
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        affinity = os.cpu_count() or 1
    return min(int(allocated), affinity) if allocated.isdigit() and int(allocated) > 0 else affinity


def available_memory_bytes() -> int | None:
    """Memory the OS can still give (MemAvailable), where /proc tells."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
