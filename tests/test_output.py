"""What a sweep tells the person or the log file watching it: a line per finished run, evaluation points with -v,
nothing but errors with --quiet, the `ls` summary at the end; bars with live metrics on a terminal."""

import re

from conftest import cli
from ddescent.progress import NORMAL, Reporter, setup_logging
from ddescent.runner import Outcome


def test_a_batch_job_log_has_a_line_per_run_with_its_width_error_and_progress(tiny, tmp_path):
    r = cli("sweep", "width=4,8,16", *tiny, "--results", str(tmp_path / "r"), process=True)  # stderr is a pipe
    assert r.returncode == 0, r.stderr
    runs = [line for line in r.stderr.splitlines() if ": complete, train error" in line]
    assert len(runs) == 3
    for width, line in zip((4, 8, 16), sorted(runs, key=lambda ln: int(re.search(r"width=(\d+)", ln).group(1)))):
        assert re.search(rf"\[\d/3, .* elapsed, ETA .*\] mlp width={width} ", line) and "test error 0." in line
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line)  # time-stamped in a log file
    assert any(line.split()[-11:-10] == ["run_id"] or "run_id" in line and "test_err" in line
               for line in r.stderr.splitlines())  # the ls summary closes the sweep
    assert "interpolation threshold" in r.stderr  # (a curve needs 3 widths; 2 make a pair)


def test_verbose_adds_evaluation_points_and_quiet_prints_nothing_but_errors(tiny, tmp_path):
    r = cli("sweep", "width=4", *tiny, "--results", str(tmp_path / "v"), "-v", "--no-plot")
    points = [line for line in r.stderr.splitlines() if re.search(r"width=4 .* epoch \d+: train error", line)]
    assert r.returncode == 0 and {int(re.search(r"epoch (\d+):", p).group(1)) for p in points} == {0, 1, 2, 3}
    r = cli("sweep", "width=4", *tiny, "--results", str(tmp_path / "q"), "--quiet")
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    r = cli("sweep", "width=-4", *tiny, "--results", str(tmp_path / "q"), "--quiet")
    assert r.returncode == 2 and r.stderr.startswith("ddescent: error: width=-4")


def test_bars_carry_each_packs_live_metrics():
    setup_logging(NORMAL)  # bars show at the normal level, not under --quiet
    reporter = Reporter({"a": "mlp width=4", "b": "mlp width=8"}, bars=True)
    reporter("start", {"runs": ["a", "b"], "labels": ["mlp width=4", "mlp width=8"], "epochs": 10})
    (bar,) = reporter.packs.values()
    reporter("epoch", {"runs": ["a", "b"], "epoch": 3, "epochs": 10,
                       "rows": {"a": {"epoch": 3, "train_error": 0.25, "test_error": 0.5, "train_loss": 1.0,
                                      "test_loss": 2.0}}})
    assert bar.n == 3 and set(bar.postfix.split(", ")) == {"train=0.250", "test=0.500"}
    for run_id in ("a", "b"):
        reporter("run", {"outcome": Outcome(run_id, "", "complete", 1.0, {"train_error": 0.0, "test_error": 0.4})})
    assert not reporter.packs and reporter.overall.n == 2  # the pack's bar closes with its last run
    reporter.close()
