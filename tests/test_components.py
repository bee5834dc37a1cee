"""Nothing lists components by hand: the registries (built by discovery) are what `--figure` help, `ddescent
presets` and the README show, and every component module mirrors a config-group YAML."""

import importlib.resources
import re
from pathlib import Path

import pytest

from conftest import cli
from ddescent import component, figures

README = (Path(__file__).parents[1] / "README.md").read_text()
CONF = Path(str(importlib.resources.files("ddescent.conf")))


def _readme_group(group: str) -> set[str]:
    match = re.search(rf"`{group}=` \(([^)]*)\)", " ".join(README.split()))
    assert match, f"the README lists no options for {group}="
    return {name.strip() for name in match.group(1).split(",")}


@pytest.mark.parametrize("group", ["model", "data", "regularizer", "logger"])
def test_every_component_has_its_yaml_and_the_readme_lists_exactly_the_registry(group):
    names = set(component.names(group))
    assert names == {p.stem for p in (CONF / group).glob("*.yaml")}
    assert _readme_group(group) == names


def test_presets_and_plot_help_list_every_figure_and_group_option(data_cache):
    r = cli("presets")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for group in ("model", "data", "regularizer", "logger"):
        line = next(line for line in lines if line.startswith(f"{group}=:"))
        assert set(line.split(":", 1)[1].replace(",", " ").split()) == set(component.names(group))
    line = next(line for line in lines if line.startswith("figures"))
    assert set(line.split(":", 1)[1].replace(",", " ").split()) == set(figures.figures())
    r = cli("plot", "--help")
    text = " ".join(r.stdout.split())
    for name, fig in figures.figures().items():
        assert f"{name} ({' '.join(fig.summary.split())})" in text
    readme_plot = re.search(r"ddescent plot RESULTS \[--figure ([^\]]*)\]", README).group(1).split("|")
    assert readme_plot == ["auto", *figures.figures()]


def test_a_group_yaml_without_a_name_is_one_line(tmp_path, data_cache):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "nameless.yaml").write_text("depth: 2\n")
    r = cli("sweep", "model=nameless", "--dry-run", "--config-dir", str(tmp_path))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "model: the model config has no `name`" in lines[0]
    (tmp_path / "model" / "nameless.yaml").write_text("name: nosuch\n")
    r = cli("sweep", "model=nameless", "--dry-run", "--config-dir", str(tmp_path))
    assert r.returncode == 2 and "model=nosuch: no such model family; choose one of: " in r.stderr
