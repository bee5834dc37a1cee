"""Day one in Jupyter and at the prompt: a real notebook (figures inline, each once, no warnings, progress without
tqdm's "IProgress not found"), `ddescent presets` with whole descriptions, Hydra's bare `--info`, and configs shown
without their data files."""

import re
import sys
from pathlib import Path

import pytest

from conftest import cli

ROOT = Path(__file__).resolve().parents[1]


def readme_api_block() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("<!-- api-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.outputs
               if out.output_type in ("display_data", "execute_result"))


def stderr(cell) -> str:
    return "".join(out.text for out in cell.outputs if out.output_type == "stream" and out.name == "stderr")


def test_a_notebook_shows_each_figure_inline_once_without_warnings(tmp_path, data_cache):
    """The README's API block, then `plot(..., ax=ax)` into the user's axes, then the user's own `plt.subplots`,
    executed by a real kernel: each shows its image (after ddescent drew, pyplot still draws inline: no backend
    switched, interactive mode kept); a Figure returned as a cell's value is shown once; a sweep with progress in a
    kernel without ipywidgets logs its runs and nobody warns."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        readme_api_block(),
        'import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nddescent.plot(df, "9.9", ax=ax)',
        "fig2, ax2 = plt.subplots()\nax2.plot([1, 2], [3, 4])",
        "ddescent.plot(df)",
        "fig",  # the README's figure again, in a later cell
        'ddescent.sweep(["width=4", "epochs=2", "seed=0"], results="results", progress=True);',
    ]
    nb = execute(nbformat, nbclient, cells, tmp_path)
    readme, into_ax, own, bare, again, progress = nb.cells
    assert (tmp_path / "fig9_9_short.png").is_file()
    assert [images(c) for c in (readme, into_ax, own, bare, again)] == [1, 1, 1, 1, 1]
    for cell in nb.cells:
        assert "Warning" not in stderr(cell) and "IProgress" not in stderr(cell), stderr(cell)
    widgets = any(out.output_type == "display_data" and "application/vnd.jupyter.widget-view+json" in out.data
                  for out in progress.outputs)
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        assert not widgets and re.search(r"\[1/1, .*\] .*: complete, train error", stderr(progress)), \
            stderr(progress)
    else:
        assert widgets
    # a report as the kernel's first drawing leaves the user's figures inline too
    nb = execute(nbformat, nbclient, ['import ddescent\nddescent.report("results", "report.html");',
                                      "import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4]);"], tmp_path)
    assert (tmp_path / "report.html").is_file() and images(nb.cells[1]) == 1
    assert not any(stderr(cell) for cell in nb.cells), [stderr(cell) for cell in nb.cells]


def execute(nbformat, nbclient, cells: list[str], cwd: Path):
    """A notebook of these cells, executed by a fresh python3 kernel in `cwd`."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_progress_in_a_notebook_is_widget_bars_or_log_lines(monkeypatch):
    """In a kernel, bars only where ipywidgets can draw them (on or auto), log lines otherwise; elsewhere as before:
    on forces text bars, auto asks for a terminal."""
    import io

    from ddescent import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    for widgets, bars in ((False, False), (True, True)):
        monkeypatch.setattr(progress, "_widgets", lambda widgets=widgets: widgets)
        assert progress.bars_wanted("auto") is bars and progress.bars_wanted(True) is bars
        assert progress.bars_wanted("off") is False
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    assert progress.bars_wanted("on") is True and progress.bars_wanted("auto", io.StringIO()) is False


def experiment_headers() -> dict[str, str]:
    """Each preset's description as written: the comment lines at the head of its YAML, `@package` left out."""
    out = {}
    for path in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        head = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            if "@package" not in line:
                head.append(line.lstrip("#").strip())
        out[path.stem] = " ".join(" ".join(head).split())
    return out


def test_presets_prints_each_description_whole():
    r = cli("presets")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("presets (experiment=NAME):\n", 1)[1].splitlines()
    shown, name = {}, None
    for line in lines:
        if not line.startswith("  "):
            break
        if line[2] != " ":
            name, line = line.split()[0], line.strip()[len(line.split()[0]):]
            shown[name] = []
        shown[name].append(line.strip())
    shown = {k: " ".join(" ".join(v).split()) for k, v in shown.items()}
    headers = experiment_headers()
    assert set(shown) == set(headers)
    for name, text in headers.items():
        assert shown[name] == text, name  # nothing cut, no word split at a hyphen


def main(capsys, monkeypatch, *args) -> tuple[int, str]:
    """`ddescent ARGS` through the console script's entry point (cli.main, where argv is read)."""
    from ddescent import cli as ddescent_cli

    monkeypatch.setattr(sys, "argv", ["ddescent", *args])
    with pytest.raises(SystemExit) as exit_:
        ddescent_cli.main()
    return exit_.value.code or 0, capsys.readouterr().out


def test_bare_info_prints_what_hydras_info_all_does(capsys, monkeypatch, data_cache):
    for command in ("sweep", "run"):
        code, everything = main(capsys, monkeypatch, command, "--info", "all")
        assert code == 0 and "Installed Hydra Plugins" in everything and "Defaults List" in everything
        code, out = main(capsys, monkeypatch, command, "--info")
        assert (code, out) == (0, everything), command
    code, out = main(capsys, monkeypatch, "sweep", "--info", "experiment=fig9_10")  # an override, not its value
    assert code == 0 and "Installed Hydra Plugins" in out and "experiment/fig9_10" in out
    code, out = main(capsys, monkeypatch, "sweep", "--info", "defaults")
    assert code == 0 and "Defaults List" in out and "Installed Hydra Plugins" not in out


@pytest.mark.parametrize("how", ["env", "override"])
def test_a_config_is_shown_without_its_data_files(how, tmp_path, data_cache):
    """MNIST's files are needed to train, not to read the config: `config`, `sweep --cfg job` and `run --cfg job`
    print it from an empty data root."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"DDESCENT_DATA": str(empty)} if how == "env" else {}
    root = [] if how == "env" else [f"data.root={empty}"]
    for args in (["config"], ["sweep", "--cfg", "job"], ["run", "--cfg", "job"]):
        r = cli(*args, "experiment=sws_mnist_lenet300", *root, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert "name: mnist" in r.stdout and "name: sws" in r.stdout, args
        assert ("root: ${oc.env:DDESCENT_DATA,datasets}" if how == "env" else f"root: {empty}") in r.stdout
    assert not any(empty.iterdir())
