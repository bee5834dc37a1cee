"""The README's command lines, read from the README itself and run as written (issue 24, item 1).

- "The command line" synopsis: every command it lists exists and its `--help` shows every flag listed for it.
- Every `ddescent ...` line of a fenced shell block, and every inline `ddescent ...` span of the prose, runs in a
  folder with small records under ./results (a sweep of the records' kind, made here), exit code 0. What trains
  is planned, not trained: a sweep gets `--dry-run`, a run `--cfg job`. Left out, each for a stated reason: a
  download, data a user prepares, a synopsis line with placeholders (checked against --help above) and the
  gallery's table (scripts/gallery.py runs those; the presets' plans have tests of their own).
- The preset of "Writing your own experiment", written where its comment says, with its `--config-dir` command.
"""

import re
import shlex
from pathlib import Path

import pytest

from conftest import cli

README = (Path(__file__).parents[1] / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def section(title: str) -> str:
    """The text of the README's `## title` section."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def shell_lines(body: str) -> list[str]:
    """The `ddescent` commands of a shell block, continuation lines joined."""
    return [line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip().startswith("ddescent ")]


def fenced_commands() -> list[str]:
    return [line for lang, body in FENCE.findall(README) if lang in ("bash", "sh", "shell")
            for line in shell_lines(body)]


def inline_commands() -> list[tuple[str, bool]]:
    """Every inline `ddescent ...` span outside the fences, and whether it sits in a table row."""
    prose = FENCE.sub("", README)
    return [(span, line.lstrip().startswith("|")) for line in prose.splitlines()
            for span in re.findall(r"`(ddescent [^`]+)`", line)]


NEEDS_FILES = ("cifar10", "iwslt", "lenet300", "data=mnist", "fashion_mnist")


def how(command: str, in_table: bool = False) -> tuple[list[str] | None, str]:
    """(the arguments to run, or None; why not, or how it is run)."""
    args = shlex.split(command, comments=True)[1:]
    args = [a for a in args if not re.fullmatch(r"\[[^\]]*\]", a)]  # an optional [ARGUMENT] left out
    if any(re.fullmatch(r"[A-Z][A-Z_]*|\.\.\.|\|", a) for a in args):
        return None, "a synopsis with placeholders (its flags are checked against --help)"
    if args[:2] == ["data", "fetch"]:
        return None, "a download"
    if "--config-dir" in args:
        return None, "the preset example (its own test below writes the preset first)"
    if any(word in a for a in args for word in NEEDS_FILES):
        return None, "data a user downloads or prepares"
    if args and args[0] in ("sweep", "run") and in_table:
        return None, "a gallery command (scripts/gallery.py runs it)"
    if args and args[0] == "sweep" and not {"--dry-run", "--cfg", "--info"} & set(args):
        return [*args, "--dry-run"], "planned"
    if args and args[0] == "run" and not {"--cfg", "--info"} & set(args):
        return [*args, "--cfg", "job"], "composed"
    return args, "as written"


COMMANDS = [(c, False) for c in fenced_commands()] + inline_commands()
RUN = list({tuple(args): (c, args) for c, in_table in COMMANDS if (args := how(c, in_table)[0]) is not None}.values())


def test_the_readme_has_the_commands_this_file_reads():
    skipped = {c: how(c, t)[1] for c, t in dict.fromkeys(COMMANDS) if how(c, t)[0] is None}
    assert len(RUN) >= 20 and len(skipped) < len(RUN), (RUN, skipped)
    assert any(args[0] == "run" for _, args in RUN) and any(args[0] == "compare" for _, args in RUN)
    reasons = set(skipped.values())
    assert reasons <= {"a synopsis with placeholders (its flags are checked against --help)", "a download",
                       "data a user downloads or prepares", "a gallery command (scripts/gallery.py runs it)",
                       "the preset example (its own test below writes the preset first)"}


# ----------------------------------------------------------------------------- the synopsis


def synopsis() -> dict[tuple[str, ...], set[str]]:
    """{command words: the flags the synopsis lists for it}, from the first block of "The command line"."""
    body = FENCE.search(section("The command line")).group(2)
    entries: list[list[str]] = []
    for line in body.splitlines():
        if line.startswith("ddescent "):
            entries.append([line])
        elif line.strip().startswith("(plot and figures)"):
            entries.append([line])
        else:
            entries[-1].append(line)
    flags = lambda text: set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))
    out: dict[tuple[str, ...], set[str]] = {}
    for entry in entries:
        first, text = entry[0], "\n".join(entry)
        if first.strip().startswith("(plot and figures)"):
            for command in (("plot",), ("figures",)):
                out[command] |= flags(text)
            continue
        words = first.split()[1]
        if words.startswith("-"):  # ddescent --version | --install-completion | COMMAND --help
            out[()] = flags(first.split("COMMAND")[0])
        elif words == "data":  # ddescent data fetch NAME | ls
            out[("data", "fetch")], out[("data", "ls")] = set(), set()
        else:
            out[(words,)] = flags(text)
    return out


def test_every_command_and_flag_of_the_synopsis_is_in_its_help():
    listed = synopsis()
    assert ("sweep",) in listed and "--config-dir" in listed[("sweep",)] and "--where" in listed[("figures",)]
    for command, flags in listed.items():
        r = cli(*command, "--help", env={"COLUMNS": "250"})
        assert r.returncode == 0, (command, r.stderr)
        missing = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", r.stdout)]
        assert not missing, f"`ddescent {' '.join(command)} --help` lacks {missing}"



def test_every_command_of_ddescent_help_is_in_the_synopsis():
    from ddescent.cli import app

    listed = {command[0] for command in synopsis() if command}
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if not c.hidden}
    commands |= {g.name for g in app.registered_groups}
    assert commands - listed == set(), "the README's command-line synopsis lacks these commands"


# ----------------------------------------------------------------------------- the examples, run


@pytest.fixture(scope="module")
def home(tmp_path_factory, data_cache):
    """A folder with small records under ./results: fig9_9 (MLP), fig9_11 (its n_train=4000 half) and fig9_10
    (the linear student), as the README's `ls`, `plot`, `report` and `compare` examples read them."""
    home = tmp_path_factory.mktemp("readme")
    for args in (["width=2,4", "seed=0,1", "epochs=2"],
                 ["experiment=fig9_11", "n_train=4000", "width=2,4", "seed=0,1", "epochs=4"],
                 ["experiment=fig9_10", "data_seed=0,1", "model.block_lr=null", "epochs=2000"]):
        r = cli("sweep", *args, "progress=off", "--no-plot", "-q", cwd=home)
        assert r.returncode == 0, r.stderr
    return home


@pytest.mark.parametrize("command,args", sorted(RUN, key=lambda ca: ca[1][:1] == ["gc"]),  # gc moves runs: last
                         ids=[c for c, _ in sorted(RUN, key=lambda ca: ca[1][:1] == ["gc"])])
def test_a_readme_command_runs_as_written(command, args, home):
    r = cli(*args, cwd=home)
    assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


def test_the_readmes_own_preset_plans_from_its_config_dir(tmp_path, data_cache):
    """The YAML of "Writing your own experiment", saved where its comment says, and the command under it."""
    text = section("Writing your own experiment")
    yaml = FENCE.search(text, text.index("```yaml")).group(2)
    path = re.search(r"^#\s*(\S+\.yaml)", yaml, re.M).group(1)
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(yaml)
    [command] = [c for lang, body in FENCE.findall(text) if lang == "bash" for c in shell_lines(body)]
    assert "--config-dir" in command and "--dry-run" in command
    r = cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\d+ jobs: 0 done, \d+ pending", r.stdout, re.M), r.stdout[-500:]
