import os
import subprocess
import sys

import pytest

# Tiny, fast settings every CLI test shares: a small MNIST-1D (1000 samples: 250 train pool, 750 test).
TINY = ["data.num_samples=1000", "n_train=200", "epochs=3", "train.eval_points=3", "progress=off"]


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """One generated-data cache for the whole session, so MNIST-1D is generated once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["XDG_CACHE_HOME"] = str(path)
    return path


@pytest.fixture
def tiny(data_cache):
    return list(TINY)


def cli(*args, cwd=None, env=None):
    """Run the installed command as a user would: real exit code, real stderr."""
    return subprocess.run([sys.executable, "-m", "ddescent", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=600)


def plan(overrides, results):
    """The run specs of a sweep, as the planner makes them (validated, with their run ids)."""
    from ddescent.planner import plan as make_plan

    return [job.spec for job in make_plan(list(overrides), str(results))]
