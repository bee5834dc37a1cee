"""What this machine (or this job's share of it) offers: cores, torch threads and memory. Imports nothing heavy."""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


# ----------------------------------------------------------------------------- cores and threads

# A training step below this (planner units: 6 x parameters x batch, x members) gets 1 thread. Measured on an idle
# 2-core x86-64 (torch 2.13, OpenMP): 2 threads took a width-8 MLP's step (3e5) 1.2x longer than 1 thread, were
# even around 5e6 (MLP width 64; 4 x width 32) and 0.5-0.75x from 6e7 (width 300) up.
SMALL_STEP_FLOPS = 5e6
SAMPLE_S = 0.25  # how long busy_cores watches the CPUs


def usable_cores(env=None, affinity: int | None = None, proc: Path | None = None, cgroup: Path | None = None) -> int:
    """Cores this process may run on: the least of its CPU affinity (taskset, cpusets), a SLURM job's allocation
    (SLURM_CPUS_PER_TASK) and its cgroups' CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, at its
    own cgroup and every ancestor the mount shows; 1.5 cores of quota count as 1, at least 1). `env`, `affinity`
    (a count), `proc` and `cgroup` stand in for os.environ, os.sched_getaffinity, /proc and the cgroup mount in
    tests."""
    env = os.environ if env is None else env
    cores = affinity if affinity is not None else _affinity()
    allocated = str(env.get("SLURM_CPUS_PER_TASK", "")).strip()
    if allocated.isdigit() and int(allocated) > 0:
        cores = min(cores, int(allocated))
    quota = _cpu_quota(Path(proc or PROC), Path(cgroup or CGROUP))
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _cpu_quota(proc: Path, cgroup: Path) -> float | None:
    """The smallest CPU quota, in cores, of this process's cgroups (v2 and v1), or None where there is none."""
    own = _own_cgroups(proc)
    quotas = []
    for folder in _folders(cgroup, own.get("")):  # v2: "max 100000" (no limit) or "150000 100000"
        try:
            limit, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        except OSError:
            continue
        if limit.isdigit() and period.strip().isdigit() and int(period) > 0:
            quotas.append(int(limit) / int(period))
    for mount in ("cpu", "cpu,cpuacct"):  # v1: the quota is -1 where there is no limit
        for folder in _folders(cgroup / mount, own.get("cpu")) if (cgroup / mount).is_dir() else []:
            limit, period = _number(folder / "cpu.cfs_quota_us"), _number(folder / "cpu.cfs_period_us")
            if limit is not None and period:
                quotas.append(limit / period)
    return min(quotas) if quotas else None


def busy_cores(cpus: set[int] | None = None, proc: Path | None = None, seconds: float = SAMPLE_S,
               sleep=time.sleep) -> float:
    """How many of this process's CPUs (`cpus`, default its affinity) other work keeps busy now, in cores: their
    busy share of a `seconds`-long look at /proc/stat, while this process sleeps, less what this process and its
    children used meanwhile (the sweep's fork server still importing torch is not other work: it took a core of an
    idle machine). Where /proc/stat cannot be read (macOS), the 1-minute load average. `sleep` stands in for
    time.sleep in tests."""
    proc = Path(proc or PROC)
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except AttributeError:
            cpus = set()
    before, own_before = _cpu_times(proc, cpus), _own_ticks(proc)
    if before:
        sleep(seconds)
        after, own = _cpu_times(proc, cpus), _own_ticks(proc) - own_before
        busy, window = 0.0, []
        for cpu, (idle0, total0) in before.items():
            if cpu in after and after[cpu][1] > total0:
                idle1, total1 = after[cpu]
                busy += 1 - min(1.0, (idle1 - idle0) / (total1 - total0))
                window.append(total1 - total0)
        return max(0.0, busy - (own / (sum(window) / len(window)) if window else 0.0))
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _cpu_times(proc: Path, cpus: set[int]) -> dict[int, tuple[int, int]]:
    """{cpu: (idle ticks, total ticks)} from /proc/stat, for the CPUs in `cpus`; {} where it cannot be read."""
    out = {}
    try:
        lines = (proc / "stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        try:
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        except ValueError:
            continue
        out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return out


def _own_ticks(proc: Path) -> int:
    """CPU time (clock ticks, as /proc/stat counts) used so far by this process and its children."""
    pids = ["self"]
    try:
        for task in (proc / "self" / "task").iterdir():
            pids += (task / "children").read_text().split()
    except OSError:
        pass
    ticks = 0
    for pid in pids:
        try:
            fields = (proc / pid / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return ticks


def torch_threads(workers: int = 1, step_flops: float | None = None, *, env=None, cores: int | None = None,
                  busy=None, ceiling: int | None = None) -> int:
    """torch's threads for each of `workers` local processes that train at once (the sweep's own process, or each
    worker of its pool), whose largest training step does `step_flops` of arithmetic (planner units; None: not
    known). Threads contend badly: a thread preempted by other work stalls its siblings at every op's barrier, and
    a small model's ops are many and short. On a 2-core machine with two other CPU-bound processes a one-run sweep
    of a width-8 MLP took 7x longer on 2 threads than on 1 (issue 24). So:

    1. an explicit OMP_NUM_THREADS is the user's choice: used as given;
    2. a step below SMALL_STEP_FLOPS runs on 1 thread (its time is per-op overhead, which threads do not share);
    3. else the cores this process may use (usable_cores: affinity, SLURM_CPUS_PER_TASK, cgroup quota) less those
       other work keeps busy now (busy_cores, rounded), shared among the workers, at least 1;
    4. never more than `ceiling` (the threads torch is set to in the calling process: a user's
       torch.set_num_threads(n) before a sweep holds).

    `env`, `cores` and `busy` (a number or a callable returning one) stand in for os.environ, usable_cores() and
    busy_cores() in tests. busy_cores is only asked when it can change the answer (it watches the CPUs for
    SAMPLE_S)."""
    env = os.environ if env is None else env
    explicit = str(env.get("OMP_NUM_THREADS", "")).strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    threads = 1
    if step_flops is None or step_flops >= SMALL_STEP_FLOPS:
        cores = usable_cores(env) if cores is None else cores
        if cores > workers:
            busy = busy_cores if busy is None else busy
            taken = busy() if callable(busy) else busy
            threads = max(1, (cores - int(taken + 0.5)) // max(1, workers))
    return max(1, min(threads, ceiling)) if ceiling else threads


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
