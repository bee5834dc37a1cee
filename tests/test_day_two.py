"""Day two: a report to send (one self-contained HTML file, checked in a real headless Chromium), filters and styles
for figures and tables, ddescent.finals."""

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import TINY, cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_cache):
    res = tmp_path_factory.mktemp("daytwo")
    r = cli("sweep", "width=4,8,16", *TINY, "seed=0,1", "--results", str(res), "--no-plot")
    assert r.returncode == 0, r.stderr
    return res


def _chromium(*args, timeout=90):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-dev-shm-usage", *args], capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------ the report

def test_the_report_is_one_file_without_external_references(swept, tmp_path):
    import ddescent

    r = cli("report", str(swept), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    for reference in ("http://", "https://", "src=\"/", "src='/", "<link", "url(", "//cdn"):
        assert reference not in page, reference
    assert page.count("data:image/png;base64,") >= 2  # 9.9 and the heatmap at least
    assert "double descent" in page or "no double descent" in page  # the verdicts are there
    assert "What varies" in page and "seed" in page and page.count("<tr>") >= 6  # a row per run
    assert (tmp_path / "r.html").stat().st_size < 5_000_000
    again = ddescent.report(swept, tmp_path / "api.html")  # the same from Python
    assert again.read_text().count("<tr>") == page.count("<tr>")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_report_opens_offline_in_headless_chromium_its_images_decode_and_its_table_sorts(swept, tmp_path):
    page = tmp_path / "r.html"
    assert cli("report", str(swept), "-o", str(page)).returncode == 0

    def selftest(path):
        r = _chromium("--virtual-time-budget=10000", "--dump-dom", f"{path.as_uri()}#selftest")
        assert r.returncode == 0, r.stderr[-2000:]
        start = r.stdout.index('id="selftest"')
        return json.loads(r.stdout[r.stdout.index(">", start) + 1:r.stdout.index("</pre>", start)])

    found = selftest(page)
    assert found["problems"] == []  # no script error, no request the page's policy had to block
    assert len(found["images"]) >= 2 and all(ok and w > 200 and h > 150 for ok, w, h in found["images"])
    assert found["sorts"]["column"] == "test_error" and found["sorts"]["rows"] == 6
    assert found["sorts"]["ascending"] and found["sorts"]["descending"]
    # the check can fail: a page that asks for something off the machine is caught
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.read_text().replace("<h1>", "<img src='http://127.0.0.1:9/x.png'><h1>", 1))
    assert any(p.startswith("blocked") for p in selftest(tampered)["problems"])
    # a screenshot a person would recognise: not blank, the figures' red and blue curves in it
    shot = tmp_path / "shot.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--virtual-time-budget=10000", page.as_uri())
    assert shot.exists(), r.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert (pixels.sum(axis=1) < 700).mean() > 0.03  # text and figures, not a white page
    red = (pixels[:, 0] > 180) & (pixels[:, 1] < 110) & (pixels[:, 2] < 90)  # the test curve (#d1462f)
    blue = (pixels[:, 2] > 140) & (pixels[:, 0] < 80)  # the train curve (#1f5fa8)
    assert red.sum() > 200 and blue.sum() > 200


# ------------------------------------------------------------------------------------- filters and styles

def test_where_keeps_whole_runs_in_ls_plot_and_the_api(swept, tmp_path):
    import ddescent

    r = cli("ls", str(swept), "--where", "seed==1 and width>4")
    assert r.returncode == 0, r.stderr
    runs = [line for line in r.stdout.splitlines() if "complete" in line]
    assert len(runs) == 2 and all(line.split()[7] == "1" for line in runs)
    df = ddescent.load(swept)
    kept = ddescent.plot(df, "9.9", where="seed==0")
    assert "1 seed" in kept.axes[0].get_title()  # the title counts the seeds it was drawn from
    r = cli("plot", str(swept), "--where", "seed==0", "-o", str(tmp_path / "one.png"))
    assert r.returncode == 0 and (tmp_path / "one.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, says", [
    (["--where", "seed<<1"], "does not parse"),
    (["--where", "sed<1"], "name 'sed' is not defined"),
    (["--where", "seed>99"], "no run matches"),
    (["--metric", "test_los"], "choose one of: test_error, test_loss"),
    (["--metric", "val_loss"], "not recorded in these runs"),
    (["--style", "poster"], "--style poster: choose one of: paper, talk"),
    (["--format", "jpg"], "--format jpg: choose one of: png, svg, pdf"),
])
def test_bad_filters_and_styles_are_one_line(swept, tmp_path, args, says):
    r = cli("plot", str(swept), *args, "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()


def _line(fig, label):
    ax = fig.axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == label)
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def test_metric_puts_the_chosen_column_on_the_error_axis(swept):
    import ddescent

    df = ddescent.load(swept)
    fig = ddescent.plot(df, "9.9", metric="test_loss")
    x, y = _line(fig, "test")
    finals = ddescent.finals(df).groupby("width")["test_loss"].mean()
    assert np.allclose(y, finals.loc[x].to_numpy())
    assert "loss" in fig.axes[0].get_ylabel()
    _, y_error = _line(ddescent.plot(df, "9.9"), "test")
    assert not np.allclose(y, y_error)  # (the default is the error: the option changed what is drawn)


def test_talk_style_has_larger_type_and_lines_than_paper(swept):
    import ddescent

    df = ddescent.load(swept)
    paper, talk = (ddescent.plot(df, "9.9", style=s) for s in ("paper", "talk"))

    def sizes(fig):
        ax = fig.axes[0]
        return ax.xaxis.label.get_fontsize(), ax.get_xticklabels()[0].get_fontsize(), \
            max(ln.get_linewidth() for ln in ax.get_lines())

    assert all(t >= 1.4 * p for t, p in zip(sizes(talk), sizes(paper))), (sizes(talk), sizes(paper))


def test_format_svg_writes_a_vector_figure(swept, tmp_path):
    r = cli("plot", str(swept), "--figure", "9.9", "--format", "svg", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "fig9_9.svg"
    assert r.stdout.strip() == str(out)
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 20


def test_finals_is_one_row_per_run_at_its_last_evaluation(swept):
    import ddescent

    df = ddescent.load(swept)
    finals = ddescent.finals(df)
    assert len(finals) == df["run_id"].nunique() == 6
    assert (finals["epoch"] == 3).all()


# ------------------------------------------------------------------------------------------------ compare

@pytest.fixture(scope="module")
def longer(tmp_path_factory, data_cache):
    res = tmp_path_factory.mktemp("daytwo_longer")
    r = cli("sweep", "width=4,8,16", *TINY, "seed=0,1", "epochs=5", "--results", str(res), "--no-plot")
    assert r.returncode == 0, r.stderr
    return res


def test_compare_draws_both_sides_with_the_config_diff_and_the_landmarks(swept, longer, tmp_path):
    r = cli("compare", str(swept / "fig9_9"), str(longer / "fig9_9"), "-o", str(tmp_path / "c.png"),
            "--html", str(tmp_path / "c.html"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "  epochs: 3 -> 5" in lines  # what differs, and nothing else that was only swept
    assert not any(line.strip().startswith(("width:", "seed:", "results:")) for line in lines)
    assert any(line.startswith("  first minimum: A ") and "B - A = " in line and "95% Welch" in line for line in lines)
    assert (tmp_path / "c.png").stat().st_size > 10_000
    page = (tmp_path / "c.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page and "epochs" in page

    import ddescent
    from ddescent import compare

    c = compare.compare(ddescent.load(swept), ddescent.load(longer), names=("A", "B"))
    fig = compare.draw(c)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "A: epochs=3, train.epochs=3 (test)" in labels and "B: epochs=5, train.epochs=5 (test)" in labels


@pytest.mark.parametrize("args, says", [
    (["--on", "depth"], "--on depth: choose one of: width, n_train, reg_strength, epoch"),
    (["--on", "n_train"], "several curves along n_train (width=16, width=4, width=8); keep one with --where"),
    (["--on", "n_train", "--where", "width==8"], "a single n_train (200): nothing to compare along n_train"),
    (["--where", "width>100"], "no run matches"),
])
def test_compare_refuses_what_cannot_be_compared_in_one_line(swept, longer, tmp_path, args, says):
    r = cli("compare", str(swept), str(longer), *args, "-o", str(tmp_path / "c.png"))
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "c.png").exists()


# ------------------------------------------------------------------------------- runs a preset no longer asks for

def test_ls_stale_lists_and_gc_moves_the_runs_the_preset_would_not_plan(tmp_path, data_cache):
    res = tmp_path / "r"
    assert cli("sweep", "experiment=fig9_10", "--results", str(res), "--no-plot", "-q").returncode == 0
    assert cli("sweep", "experiment=fig9_10", "data_seed=3", "--results", str(res), "--no-plot", "-q").returncode == 0
    folder = res / "fig9_10"
    r = cli("ls", str(res), "--stale")
    assert r.returncode == 0, r.stderr
    assert f"{folder}: 2 run(s) the preset would not plan" in r.stdout
    extra = {line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ")}
    import pandas as pd

    assert {pd.read_parquet(folder / "runs" / f"{rid}.parquet")["data_seed"].iloc[0] for rid in extra} == {3}
    r = cli("gc", str(res), "--stale")
    assert r.returncode == 0 and "moved 2 run(s)" in r.stdout
    assert sorted(p.stem for p in (folder / "_stale").glob("*.parquet")) == sorted(extra)
    assert len(list((folder / "runs").glob("*.parquet"))) == 6  # the preset's own runs stay
    assert "0 run(s)" in cli("ls", str(res), "--stale").stdout
    r = cli("gc", str(res))
    assert r.returncode == 2 and "--stale" in r.stderr


def test_ls_plot_figures_and_report_read_results_in_the_current_folder_by_default(swept, tmp_path):
    (tmp_path / "results").symlink_to(swept, target_is_directory=True)
    r = cli("ls", cwd=tmp_path)
    assert r.returncode == 0 and len([line for line in r.stdout.splitlines() if "complete" in line]) == 6, r.stderr
    r = cli("plot", "-o", str(tmp_path / "f.png"), cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "f.png").exists(), r.stderr
    r = cli("report", "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "r.html").stat().st_size > 10_000, r.stderr


def test_a_root_of_two_experiments_gets_a_summary_each_and_plot_asks_which(swept, longer, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(swept / "fig9_9", root / "short")
    shutil.copytree(longer / "fig9_9", root / "long")
    r = cli("ls", str(root))
    assert r.returncode == 0, r.stderr
    heads = [line for line in r.stdout.splitlines() if line.startswith("== ")]
    assert heads == ["== long", "== short"]
    tables = r.stdout.split("== short")
    assert tables[0].count("complete") == 6 and tables[1].count("complete") == 6  # not one mixed table
    r = cli("plot", str(root), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "holds 2 experiments (long, short)" in r.stderr and "ddescent figures" in r.stderr
