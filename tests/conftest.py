import os
import subprocess
import sys

import pytest

# Tiny, fast settings every CLI test shares: a small MNIST-1D (1000 samples: 250 train pool, 750 test).
TINY = ["data.num_samples=1000", "n_train=200", "epochs=3", "train.eval_points=3", "progress=off", "seed=0"]


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """One generated-data cache for the whole session, so MNIST-1D is generated once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["XDG_CACHE_HOME"] = str(path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny products and convolutions run several times slower on two OpenMP threads than on one when the
    cores are shared; modules of them ask for one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(data_cache):
    return list(TINY)


def cli(*args, cwd=None, env=None, process=False):
    """Run the `ddescent` command as a user would and return its exit code, stdout and stderr.

    By default in this process (typer's CliRunner, with this process's argv, environment and working directory
    set for the call): the command is the same code, without the seconds of a new interpreter importing torch.
    `process=True` runs a real `python -m ddescent` (for signals, launchers and anything process-wide)."""
    if process:
        return subprocess.run([sys.executable, "-m", "ddescent", *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, **(env or {})}, timeout=600)
    import logging
    import traceback

    from typer.testing import CliRunner

    from ddescent.cli import app

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    os.environ.update(env or {})
    sys.argv = ["ddescent", *args]
    loggers = [logging.getLogger("ddescent"), logging.getLogger()]
    handlers = [list(logger.handlers) for logger in loggers]  # a call may set up logging on CliRunner's streams
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        for logger, saved in zip(loggers, handlers):
            logger.handlers[:] = saved
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # what the interpreter would print
    return subprocess.CompletedProcess(["ddescent", *args], result.exit_code, result.stdout, stderr)


def plan(overrides, results):
    """The run specs of a sweep, as the planner makes them (validated, with their run ids)."""
    from ddescent.planner import plan as make_plan

    return [job.spec for job in make_plan(list(overrides), str(results))]
