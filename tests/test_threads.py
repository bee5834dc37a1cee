"""torch's threads fit the machine (issue 24, item 3): the cores this process may use (affinity, SLURM's allocation,
the cgroup's CPU quota), less the cores other work keeps busy, and one thread for small steps, whatever is free
(two threads that contend with other load made a one-run sweep 7x slower). Every input is injected."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ddescent import machine, workers

ROOT = Path(__file__).resolve().parents[1]
BIG = 1e11  # a step worth threads (planner units: 6 x parameters x batch)
SMALL = 3e5  # a width-8 MLP's step


def _proc(tmp_path, cgroup_line):
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    return proc


# ----------------------------------------------------------------------------- the cores this process may use


def test_a_cgroup_v2_cpu_quota_limits_the_cores(tmp_path):
    proc = _proc(tmp_path, "0::/job/step")
    cgroup = tmp_path / "cgroup"
    (cgroup / "job" / "step").mkdir(parents=True)
    (cgroup / "cpu.max").write_text("max 100000\n")  # the root: no limit
    (cgroup / "job" / "cpu.max").write_text("250000 100000\n")  # 2.5 cores, an ancestor's quota binds
    (cgroup / "job" / "step" / "cpu.max").write_text("max 100000\n")
    assert machine.usable_cores(env={}, affinity=8, proc=proc, cgroup=cgroup) == 2
    assert machine.usable_cores(env={"SLURM_CPUS_PER_TASK": "1"}, affinity=8, proc=proc, cgroup=cgroup) == 1
    (cgroup / "job" / "cpu.max").write_text("50000 100000\n")  # half a core: still one
    assert machine.usable_cores(env={}, affinity=8, proc=proc, cgroup=cgroup) == 1


def test_a_cgroup_v1_cpu_quota_limits_the_cores(tmp_path):
    proc = _proc(tmp_path, "3:cpu,cpuacct:/job")
    cgroup = tmp_path / "cgroup"
    (cgroup / "cpu,cpuacct" / "job").mkdir(parents=True)
    (cgroup / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")  # the root: no limit
    (cgroup / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    (cgroup / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us").write_text("300000\n")
    (cgroup / "cpu,cpuacct" / "job" / "cpu.cfs_period_us").write_text("100000\n")
    assert machine.usable_cores(env={}, affinity=16, proc=proc, cgroup=cgroup) == 3
    assert machine.usable_cores(env={}, affinity=2, proc=proc, cgroup=cgroup) == 2  # the affinity binds
    (cgroup / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us").write_text("-1\n")
    assert machine.usable_cores(env={}, affinity=16, proc=proc, cgroup=cgroup) == 16


def test_slurm_cpus_per_task_limits_the_cores(tmp_path):
    proc, cgroup = _proc(tmp_path, "0::/"), tmp_path / "no-cgroup"
    assert machine.usable_cores(env={"SLURM_CPUS_PER_TASK": "4"}, affinity=64, proc=proc, cgroup=cgroup) == 4
    assert machine.usable_cores(env={"SLURM_CPUS_PER_TASK": ""}, affinity=64, proc=proc, cgroup=cgroup) == 64


# ----------------------------------------------------------------------------- the cores other work keeps busy


def _stat(path, cpus):
    """A /proc/stat with per-CPU lines: {cpu: (busy ticks, idle ticks)}."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{c} {busy} 0 0 {idle} 0 0 0 0 0 0" for c, (busy, idle) in sorted(cpus.items())]
    path.write_text("\n".join(lines) + "\nintr 1\n")


def test_busy_cores_counts_only_this_process_cpus_while_it_sleeps(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    _stat(proc / "stat", {0: (100, 100), 1: (100, 100), 2: (100, 100)})
    # 25 ticks later: cpu0 all busy, cpu1 a fifth busy, cpu2 (not ours) all busy
    later = lambda seconds: _stat(proc / "stat", {0: (125, 100), 1: (105, 120), 2: (125, 100)})  # noqa: E731
    assert machine.busy_cores({0, 1}, proc, sleep=later) == pytest.approx(1.2)


def _pid_stat(path, ticks):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"77 (python -c x) R 1 77 77 0 -1 4194304 0 0 0 0 {ticks} 0 0 0 20 0 1 0 1 0 0\n")


def test_busy_cores_leaves_out_this_process_and_its_children(tmp_path):
    # the sweep's fork server, still importing torch while the sweep decides, is not other work
    proc = tmp_path / "proc"
    proc.mkdir()
    _stat(proc / "stat", {0: (100, 100), 1: (100, 100)})
    _pid_stat(proc / "self" / "stat", 10)
    (proc / "self" / "task" / "1").mkdir(parents=True)
    (proc / "self" / "task" / "1" / "children").write_text("77 ")
    _pid_stat(proc / "77" / "stat", 40)

    def later(seconds):  # cpu0 all busy, cpu1 a fifth: the child used one whole core of the 25 ticks
        _stat(proc / "stat", {0: (125, 100), 1: (105, 120)})
        _pid_stat(proc / "77" / "stat", 65)

    assert machine.busy_cores({0, 1}, proc, sleep=later) == pytest.approx(0.2)


def test_busy_cores_falls_back_to_the_load_average(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (1.5, 1.0, 0.5), raising=False)
    assert machine.busy_cores({0, 1}, tmp_path / "no-proc", sleep=lambda s: None) == 1.5


# ----------------------------------------------------------------------------- the choice


def test_a_loaded_machine_gets_no_more_threads_than_free_cores():
    # the machine: 2 cores, two CPU-bound processes compete; today's choice was all the cores
    assert machine.torch_threads(1, BIG, env={}, cores=2, busy=2.0) == 1
    assert machine.torch_threads(1, BIG, env={}, cores=2, busy=lambda: 1.1) == 1
    assert machine.torch_threads(1, BIG, env={}, cores=16, busy=5.6) == 10
    assert machine.torch_threads(1, BIG, env={}, cores=2, busy=0.2) == 2  # idle: every core, as before


def test_free_cores_are_shared_among_the_workers():
    assert machine.torch_threads(3, BIG, env={}, cores=16, busy=4.0) == 4
    assert machine.torch_threads(2, BIG, env={}, cores=2, busy=lambda: pytest.fail("not needed")) == 1
    assert machine.torch_threads(8, BIG, env={}, cores=16, busy=12.0) == 1


def test_small_steps_get_one_thread_and_the_cpus_are_not_watched():
    watched = lambda: pytest.fail("a small step needs no look at the CPUs")  # noqa: E731
    assert machine.torch_threads(1, SMALL, env={}, cores=16, busy=watched) == 1
    assert machine.torch_threads(1, None, env={}, cores=4, busy=0.0) == 4  # not known: the free cores


def test_the_user_choice_holds():
    assert machine.torch_threads(1, SMALL, env={"OMP_NUM_THREADS": "3"}, cores=2, busy=2.0) == 3
    assert machine.torch_threads(2, BIG, env={"OMP_NUM_THREADS": "1"}, cores=16, busy=0.0) == 1
    assert machine.torch_threads(1, BIG, env={"OMP_NUM_THREADS": ""}, cores=16, busy=0.0, ceiling=2) == 2


def test_the_cores_come_from_usable_cores(monkeypatch):
    monkeypatch.setattr(machine, "_affinity", lambda: 8)
    monkeypatch.setattr(machine, "_cpu_quota", lambda proc, cgroup: 6.0)
    assert machine.torch_threads(1, BIG, env={"SLURM_CPUS_PER_TASK": "5"}, busy=0.0) == 5
    assert machine.torch_threads(1, BIG, env={}, busy=0.0) == 6
    monkeypatch.setattr(machine, "busy_cores", lambda: 3.0)  # what torch_threads asks by default
    assert machine.torch_threads(1, BIG, env={}) == 3


def _job(flops_per_step, steps=100, accelerator=False):
    return SimpleNamespace(flops=flops_per_step * steps, steps=steps, accelerator=accelerator)


def test_a_pack_step_is_its_widest_member_times_its_members(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(machine, "_affinity", lambda: 4)
    monkeypatch.setattr(machine, "_cpu_quota", lambda proc, cgroup: None)
    small = [_job(SMALL), _job(SMALL / 2)]
    assert workers.step_flops(small) == 2 * SMALL
    assert workers.pack_threads([small], 1) == 1
    assert workers.pack_threads([small, [_job(BIG)]], 1) == 4  # the largest pack decides
    assert workers.pack_threads([small, [_job(BIG)]], 2) == 2
    assert workers.pack_threads([[_job(BIG)]], 1, ceiling=3) == 3
    monkeypatch.setattr(machine, "busy_cores", lambda: 3.0)
    assert workers.pack_threads([[_job(BIG)]], 1) == 1


# ----------------------------------------------------------------------------- the measurement script


def test_threads_under_load_times_both_arms_idle_and_loaded(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "threads_under_load.py"), "--cases", "single",
                        "--loads", "0,1", "--rounds", "1", "--epochs", "1", "--out", str(tmp_path / "t.json")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    table = [line for line in r.stdout.splitlines() if line.startswith("| single |")]
    assert len(table) == 2, r.stdout  # idle and with one competing process
    assert "OMP_NUM_THREADS=1 (s)" in r.stdout


# ----------------------------------------------------------------------------- the sweep uses the choice


def _planned(flops_per_step):
    job = _job(flops_per_step)
    job.spec, job.label = SimpleNamespace(), "w"
    return job


def test_a_sweep_trains_on_the_chosen_threads_and_gives_this_process_its_own_back(monkeypatch):
    import torch

    from ddescent import launch

    seen, made = [], []

    class Pool:
        def __init__(self, n, threads):
            made.append((n, threads))

        def run(self, tasks, events, force):
            return []

        def close(self):
            pass

    monkeypatch.setattr(launch, "execute", lambda specs, events, force: seen.append(torch.get_num_threads()) or [])
    monkeypatch.setattr(launch, "Pool", Pool)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "_cpu_quota", lambda proc, cgroup: None)
    monkeypatch.setattr(machine, "_affinity", lambda: 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(machine, "busy_cores", lambda: 2.0)  # two CPU-bound processes compete
        launch.run_local([[_planned(BIG)]], lambda *a: None)
        assert torch.get_num_threads() == 2  # this process's own setting is back
        launch.run_local([[_planned(SMALL)]], lambda *a: None)
        monkeypatch.setattr(machine, "busy_cores", lambda: 0.0)  # idle
        launch.run_local([[_planned(SMALL)]], lambda *a: None)
        launch.run_local([[_planned(BIG)]], lambda *a: None)
        assert seen == [1, 1, 1, 2]
        monkeypatch.setattr(machine, "_affinity", lambda: 4)
        launch.run_local([[_planned(BIG)], [_planned(BIG)]], lambda *a: None)  # a worker per core, cores shared
        monkeypatch.setattr(machine, "busy_cores", lambda: 3.0)
        launch.run_local([[_planned(BIG)], [_planned(BIG)]], lambda *a: None)
        assert made == [(2, 2), (2, 1)]
    finally:
        torch.set_num_threads(previous)
