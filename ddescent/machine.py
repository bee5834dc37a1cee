"""What this machine (or this job's share of it) offers: cores and memory. Imports nothing heavy."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


def usable_cores() -> int:
    """Cores this process may run on: a SLURM job's allocation (SLURM_CPUS_PER_TASK), else its CPU affinity
    (taskset, cgroups), else the machine's."""
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        affinity = os.cpu_count() or 1
    return min(int(allocated), affinity) if allocated.isdigit() and int(allocated) > 0 else affinity


def available_memory_bytes(proc: Path | None = None, cgroup: Path | None = None) -> int | None:
    """Memory this process can still get, where the system tells: the smallest of what the OS can give
    (MemAvailable), what its memory cgroup allows (v2 or v1, the limit less the usage, at its own cgroup and every
    ancestor the mount shows) and what is left of its address space (RLIMIT_AS less VmSize). `proc` and `cgroup`
    are where /proc and the cgroup mount are (default PROC and CGROUP; a test points them at folders of its own)."""
    proc, cgroup = Path(proc or PROC), Path(cgroup or CGROUP)
    found = [v for v in (_meminfo(proc), _cgroup_left(proc, cgroup), _address_space_left(proc)) if v is not None]
    return max(min(found), 0) if found else None


def _meminfo(proc: Path) -> int | None:
    try:
        info = dict(line.split(":", 1) for line in (proc / "meminfo").read_text().splitlines() if ":" in line)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def _reclaimable(path: Path, key: str) -> int:
    """Page cache the kernel drops before it kills (memory.stat's inactive file pages): usage counts it."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _own_cgroups(proc: Path) -> dict[str, str]:
    """This process's cgroup per hierarchy from /proc/self/cgroup: {"": path} for v2, {"memory": path} for v1."""
    out = {}
    try:
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(","):
                out[name] = path
    except (OSError, ValueError):
        pass
    return out


def _folders(mount: Path, own: str | None) -> list[Path]:
    """The mount's root and, where the mount shows them, this process's cgroup folder and its ancestors (inside a
    container the mount is the container's own cgroup, and /proc/self/cgroup names a path it does not show)."""
    folders = [mount]
    parts = [p for p in (own or "").split("/") if p]
    for i in range(1, len(parts) + 1):
        folder = mount.joinpath(*parts[:i])
        if folder.is_dir():
            folders.append(folder)
    return folders


def _cgroup_left(proc: Path, cgroup: Path) -> int | None:
    """The least memory left under any limit of this process's memory cgroups (v2, then v1), or None."""
    own = _own_cgroups(proc)
    left = []
    for folder in _folders(cgroup, own.get("")):  # v2: memory.max, memory.current
        limit, usage = _number(folder / "memory.max"), _number(folder / "memory.current")
        if limit is not None and usage is not None:
            left.append(limit - usage + _reclaimable(folder / "memory.stat", "inactive_file"))
    for folder in _folders(cgroup / "memory", own.get("memory")):  # v1
        limit, usage = _number(folder / "memory.limit_in_bytes"), _number(folder / "memory.usage_in_bytes")
        if limit is not None and usage is not None and limit < UNLIMITED:
            left.append(limit - usage + _reclaimable(folder / "memory.stat", "total_inactive_file"))
    return min(left) if left else None


def _address_space_left(proc: Path) -> int | None:
    """RLIMIT_AS (ulimit -v) less the address space this process already has (VmSize)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        for line in (proc / "self" / "status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return soft - used
