"""Figures and analysis on tiny hand-made records tables: the plotted numbers must be the records' numbers."""

import hashlib
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ddescent import analysis, figures, store
from ddescent.figures.fig9_11 import hurt_spans
from ddescent.cli import app

EPOCHS = (0, 1, 2, 4, 8)


def run_rows(width, seed=0, n_train=100, reg_strength=0.0, regularizer=None, label_noise=0.1, model="mlp",
             status="complete", epochs=EPOCHS, **metrics):
    """One run's records with every §4 column. Each metric is a number (the same at every epoch), a list (one
    value per epoch) or a function of the epoch; unspecified metrics are filled with plausible constants."""
    regularizer = regularizer or ("l2" if reg_strength > 0 else "none")
    ident = dict(width=width, seed=seed, n_train=n_train, reg_strength=reg_strength, regularizer=regularizer,
                 label_noise=label_noise, model=model)
    run_id = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    defaults = dict(train_error=0.1, train_loss=0.3, test_error=0.4, test_loss=1.0, val_error=np.nan, val_loss=np.nan)
    rows = []
    for i, epoch in enumerate(epochs):
        row = dict(run_id=run_id, experiment="synthetic", status=status, dataset="mnist1d", model=model,
                   optimizer="sgd", regularizer=regularizer, width=float(width), n_params=int(width * width + 52 * width + 10),
                   n_train=n_train, n_test=1000, label_noise=label_noise, label_noise_effective=label_noise * 0.9,
                   reg_strength=float(reg_strength), seed=seed, data_seed=0, epoch=epoch, step=epoch * 10,
                   wall_time_s=0.1 * epoch, config=json.dumps(ident), ddescent_version="0.1.0",
                   torch_version="2.0", device="cpu")
        for name, default in defaults.items():
            v = metrics.get(name, default)
            row[name] = float(v(epoch) if callable(v) else v[i] if isinstance(v, (list, tuple)) else v)
        rows.append(row)
    return rows


def table(*runs):
    df = pd.DataFrame([row for rows in runs for row in rows])
    assert set(store.COLUMNS) <= set(df.columns)
    return df[store.COLUMNS]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def line(ax, i):
    return np.asarray(ax.get_lines()[i].get_xdata(), float), np.asarray(ax.get_lines()[i].get_ydata(), float)


# ---------------------------------------------------------------- analysis on hand-made tables

def test_interpolation_threshold_uses_the_seed_mean():
    final = {2: (0.3, 0.3), 4: (0.05, 0.04), 8: (0.005, 0.02), 16: (0.0, 0.0)}
    df = table(*[run_rows(w, seed=s, train_error=e) for w, errs in final.items() for s, e in enumerate(errs)])
    rows = analysis.final(df)
    assert analysis.interpolation_threshold(rows, 0.01) == 16  # width 8 averages 0.0125
    assert analysis.interpolation_threshold(rows, 0.02) == 8
    assert analysis.interpolation_threshold(rows, 0.001) == 16
    assert analysis.interpolation_threshold(table(run_rows(4, train_error=0.2)), 0.01) is None


def test_effective_model_complexity_is_the_largest_fitted_n_train():
    # final train error by (width, n_train); width 8 at n=400 has two seeds averaging 0.015 > eps
    errs = {2: {100: 0.2, 200: 0.3, 400: 0.4},
            4: {100: 0.0, 200: 0.1, 400: 0.2},
            8: {100: 0.0, 200: 0.005, 400: (0.0, 0.03)},
            16: {100: 0.0, 200: 0.0, 400: 0.0},
            32: {100: 0.05, 200: 0.0, 400: 0.02}}
    runs = []
    for w, by_n in errs.items():
        for n, e in by_n.items():
            for s, v in enumerate(e if isinstance(e, tuple) else (e,)):
                # the last epoch counts, not an earlier one
                runs.append(run_rows(w, seed=s, n_train=n, train_error=[0.9, 0.5, 0.0, 0.0, v]))
    df = table(*runs)
    emc = analysis.effective_model_complexity(analysis.final(df), eps=0.01)
    assert emc == {2.0: None, 4.0: 100, 8.0: 200, 16.0: 400, 32.0: 200}
    assert analysis.effective_model_complexity(analysis.final(df), eps=0.025)[32.0] == 400
    # diverged runs do not count as fitted
    bad = table(run_rows(4, n_train=100, train_error=0.3), run_rows(4, n_train=800, train_error=0.0, status="diverged"))
    assert analysis.effective_model_complexity(analysis.final(bad)) == {4.0: None}


def test_more_data_hurts_compares_neighbouring_training_sizes():
    small = {2: 1.0, 4: 1.2, 8: 1.5, 16: 1.3, 32: 1.0}
    large = {2: 0.8, 4: 1.44, 8: 1.6, 16: 1.1, 32: 0.9}
    df = table(*[run_rows(w, n_train=100, test_loss=v) for w, v in small.items()],
               *[run_rows(w, n_train=400, test_loss=v) for w, v in large.items()])
    cmp = analysis.more_data_hurts(analysis.final(df))
    assert list(cmp["width"]) == [2, 4, 8, 16, 32]
    assert list(cmp["hurts"]) == [False, True, True, False, False]
    assert cmp.set_index("width").loc[4.0, "ratio"] == pytest.approx(1.2)


def test_early_stopping_chooses_by_validation_never_by_test():
    # validation loss is lowest at epoch 2; test error is lowest at epoch 8
    df = table(run_rows(8, val_loss=[2.3, 1.0, 0.5, 0.9, 1.5], test_error=[0.9, 0.5, 0.4, 0.35, 0.3]),
               run_rows(16, val_loss=[2.3, 0.4, 0.4, 0.9, 1.5], test_error=[0.9, 0.45, 0.4, 0.35, 0.3]))
    best = analysis.early_stopped(df).set_index("width")
    assert best.loc[8.0, "epoch"] == 2 and best.loc[8.0, "test_error"] == pytest.approx(0.4)
    assert best.loc[16.0, "epoch"] == 1  # ties go to the earliest evaluation
    with pytest.raises(ValueError, match="test set"):
        analysis.early_stopped(df, by="test_loss")
    with pytest.raises(ValueError, match="val_loss"):
        analysis.early_stopped(table(run_rows(8)))


# ---------------------------------------------------------------- which figures the axes allow

def test_available_figures_follow_the_stored_axes():
    assert list(figures.figures()) == ["9.9", "9.9-early", "9.10", "9.11", "lambda", "heatmap", "sws", "ridge-n",
                                       "ridge-p", "ridge-heatmap"]
    widths = [run_rows(w) for w in (4, 8, 16)]
    assert figures.available(table(*widths)) == ["9.9", "9.10", "heatmap"]
    assert figures.available(table(run_rows(8))) == ["9.10"]
    assert figures.available(table(*[run_rows(w, epochs=(0, 5)) for w in (4, 8)])) == ["9.9"]
    two_epochs = table(*[run_rows(w, epochs=(0, 1, 2)) for w in (4, 8)])
    assert "heatmap" not in figures.available(two_epochs)  # only 2 epochs > 0
    samples = table(*widths, *[run_rows(w, n_train=400) for w in (4, 8, 16)])
    assert "9.11" in figures.available(samples)
    assert "9.11" not in figures.available(table(run_rows(4), run_rows(4, n_train=400)))  # one width
    lam = table(run_rows(16), run_rows(16, reg_strength=0.1))
    assert figures.available(lam) == ["9.10"]  # one lambda > 0 is a point, not a curve along 1/lambda
    lam = table(run_rows(16), run_rows(16, reg_strength=0.1), run_rows(16, reg_strength=1.0))
    assert figures.available(lam) == ["9.10", "lambda"]
    val = table(*[run_rows(w, val_loss=[2, 1, 0.5, 0.7, 0.9]) for w in (4, 8)])
    assert "9.9-early" in figures.available(val)
    why = figures.availability(table(*widths))
    assert "val_loss" in why["9.9-early"] and "n_train" in why["9.11"] and "reg_strength" in why["lambda"]
    assert figures.available(table(run_rows(4, status="diverged"), run_rows(8, status="diverged"))) == []


# ---------------------------------------------------------------- figures: the plotted data is the records' data

def test_fig9_9_plots_seed_means_with_a_band_and_the_threshold():
    final = {4: (0.3, 0.2), 8: (0.0, 0.0), 16: (0.0, 0.0)}
    test = {4: (0.5, 0.4), 8: (0.6, 0.62), 16: (0.45, 0.47)}
    df = table(*[run_rows(w, seed=s, train_error=final[w][s], test_error=test[w][s]) for w in final for s in (0, 1)])
    ax = figures.figure("9.9").draw(df).axes[0]
    x, y = line(ax, 0)
    assert list(x) == [4, 8, 16] and np.allclose(y, [0.25, 0, 0])
    x, y = line(ax, 1)
    assert np.allclose(y, [0.45, 0.61, 0.46])
    xt, _ = line(ax, 2)
    assert np.allclose(xt, 8)  # the threshold line
    assert len(ax.collections) == 2  # one seed band per line
    assert "9.9" in ax.figure._suptitle.get_text()


def test_fig9_10_lines_follow_epochs_for_the_chosen_widths():
    df = table(*[run_rows(w, test_error=lambda e, w=w: 0.5 - 0.01 * e - 0.001 * w) for w in (4, 8, 16)])
    ax = figures.figure("9.10").draw(df, widths=[4, 16]).axes[0]
    x, y = line(ax, 0)  # width 4, test; epoch 0 left out (log x)
    assert list(x) == [1, 2, 4, 8] and np.allclose(y, [0.5 - 0.01 * e - 0.004 for e in (1, 2, 4, 8)])
    _, y = line(ax, 2)  # width 16, test
    assert np.allclose(y, [0.5 - 0.01 * e - 0.016 for e in (1, 2, 4, 8)])


def test_fig9_11_lines_per_n_train_and_shading_where_more_data_hurts():
    small = {2: (1.0, 1.2), 4: (1.2, 1.2), 8: (1.5, 1.5), 16: (1.3, 1.3), 32: (1.0, 1.0)}
    large = {2: 0.8, 4: 1.4, 8: 1.6, 16: 1.1, 32: 1.05}
    df = table(*[run_rows(w, seed=s, n_train=100, test_loss=v[s]) for w, v in small.items() for s in (0, 1)],
               *[run_rows(w, n_train=400, test_loss=v) for w, v in large.items()])
    fig = figures.figure("9.11").draw(df)
    ax = fig.axes[0]
    x, y = line(ax, 0)
    assert list(x) == [2, 4, 8, 16, 32] and np.allclose(y, [1.1, 1.2, 1.5, 1.3, 1.0])
    assert ax.get_lines()[0].get_label() == "n_train = 100"
    x, y = line(ax, 1)
    assert np.allclose(y, list(large.values())) and ax.get_lines()[1].get_label() == "n_train = 400"
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "test loss" and "9.11" in fig._suptitle.get_text()
    # the larger set is worse at widths 4, 8 and 32: two shaded ranges, [~2.8, ~11.3] and [~22.6, ~45]
    spans = sorted((p.get_bbox().x0, p.get_bbox().x1) for p in ax.patches)
    assert len(spans) == 2
    covered = lambda w: any(lo < w < hi for lo, hi in spans)  # noqa: E731
    assert [covered(w) for w in (2, 4, 8, 16, 32)] == [False, True, True, False, True]
    assert spans[0] == pytest.approx((np.sqrt(8), np.sqrt(128)))
    assert any("+17%" in t.get_text() for t in ax.get_legend().get_texts())  # worst ratio 1.4 / 1.2
    # one seed at n = 400: no interval for the difference, so the title claims nothing sure
    assert "more data hurts on average at 3 of 5 widths; the 95% CI of the difference (Welch) excludes zero at 0" \
        in " ".join(ax.get_title().split())


def test_hurt_spans_merge_neighbours_and_reach_past_the_ends():
    assert hurt_spans([2, 4, 8], []) == []
    (lo, hi), = hurt_spans([2, 4, 8], [2, 4])
    assert lo == pytest.approx(np.sqrt(2)) and hi == pytest.approx(np.sqrt(32))
    assert len(hurt_spans([2, 4, 8, 16], [2, 8])) == 2


def test_fig9_11_needs_two_training_sizes():
    with pytest.raises(ValueError, match="n_train"):
        figures.figure("9.11").draw(table(run_rows(4), run_rows(8)))


def test_lambda_figure_plots_against_inverse_lambda_with_lambda0_at_the_edge():
    lams = {0.0: (0.0, 0.5), 1e-3: (0.01, 0.45), 1e-2: (0.05, 0.4), 1e-1: (0.2, 0.42), 1.0: (0.6, 0.65)}
    runs = [run_rows(w, reg_strength=lam, train_error=tr + 0.001 * w, test_error=te) for w in (16, 64)
            for lam, (tr, te) in lams.items()]
    runs.append(run_rows(16, seed=1, reg_strength=1e-2, train_error=0.07 + 0.016, test_error=0.5))
    df = table(*runs)
    fig = figures.figure("lambda").draw(df)
    assert len(fig.axes) == 2  # one panel per width
    ax = fig.axes[0]
    x, y = line(ax, 0)  # train, λ > 0 only, ordered by 1/λ
    assert np.allclose(x, [1, 10, 100, 1000])
    assert np.allclose(y, [0.6 + 0.016, 0.2 + 0.016, 0.06 + 0.016, 0.01 + 0.016])
    _, y = line(ax, 1)
    assert np.allclose(y, [0.65, 0.42, 0.45, 0.45])  # λ = 1e-2: seeds 0.4 and 0.5
    xz, yz = line(ax, 3)  # λ = 0 test error: a marker right of the largest 1/λ
    assert len(xz) == 1 and xz[0] > 1000 and yz[0] == pytest.approx(0.5)
    assert ax.get_xscale() == "log" and "1/λ" in ax.get_xlabel() and "width 16" in ax.get_title()
    assert len(figures.figure("lambda").draw(df, widths=[64]).axes) == 1
    with pytest.raises(ValueError, match="reg_strength"):
        figures.figure("lambda").draw(table(run_rows(16), run_rows(32)))


def test_heatmap_array_is_the_seed_mean_over_width_and_epoch():
    f = lambda w, s: (lambda e: 0.1 * np.log2(w) + 0.01 * e + 0.02 * s)  # noqa: E731
    runs = [run_rows(w, seed=s, test_error=f(w, s)) for w in (4, 8, 16) for s in (0, 1)]
    runs.append(run_rows(32, epochs=(0, 1, 2), test_error=f(32, 0)))  # a shorter run: blank cells
    fig = figures.figure("heatmap").draw(table(*runs))
    ax = fig.axes[0]
    mesh = ax.collections[0]
    grid = np.ma.asarray(mesh.get_array()).reshape(4, 4)  # epochs 1, 2, 4, 8 × widths 4, 8, 16, 32
    expect = np.array([[0.1 * np.log2(w) + 0.01 * e + 0.01 for w in (4, 8, 16)] for e in (1, 2, 4, 8)])
    assert np.allclose(grid[:, :3], expect)
    assert np.allclose(grid[:2, 3], [0.5 + 0.01, 0.5 + 0.02]) and grid.mask[2:, 3].all()
    xe, ye = mesh.get_coordinates()[0, :, 0], mesh.get_coordinates()[:, 0, 1]
    assert all(lo < w < hi for lo, w, hi in zip(xe, (4, 8, 16, 32), xe[1:]))
    assert all(lo < e < hi for lo, e, hi in zip(ye, (1, 2, 4, 8), ye[1:]))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_ylabel() == "epochs"


def test_early_stopped_fig9_9_uses_validation_loss():
    runs = [run_rows(w, seed=s, val_loss=[2.3, 1.0, 0.5, 0.9, 1.5], test_error=[0.9, 0.5, 0.4 + 0.01 * w + 0.02 * s, 0.35, 0.6])
            for w in (4, 8) for s in (0, 1)]
    df = table(*runs)
    fig = figures.figure("9.9-early").draw(df)
    ax = fig.axes[0]
    x, y = line(ax, 0)
    assert list(x) == [4, 8] and np.allclose(y, [0.45, 0.49])  # test error at epoch 2 (min val_loss), seed mean
    _, y = line(ax, 1)
    assert np.allclose(y, [0.6, 0.6])  # final-epoch test error for comparison
    with pytest.raises(ValueError, match="val_loss"):
        figures.figure("9.9-early").draw(table(run_rows(4), run_rows(8)))


def sws_run(width=8):
    """A soft-weight-sharing run: the mixture at every evaluation and the final weight histogram."""
    rows = table(run_rows(width, regularizer="sws", reg_strength=1.0))
    k = len(rows)
    rows["sws_pi"] = [[0.9, 0.1]] * k
    rows["sws_mu"] = [[0.0, 0.1 * i] for i in range(k)]
    rows["sws_sigma"] = [[0.01, 0.05]] * k
    rows["weight_hist_range"] = [[-0.2, 0.2]] * k
    rows["weight_hist_counts"] = [[0.0, 10.0, 30.0, 10.0]] * k
    rows["quantized_test_error"], rows["compression"] = 0.45, 20.0
    return rows


def test_lambda_figure_adds_quantized_error_and_compression_for_sws_runs():
    runs = []
    for lam, te, q, c in ((0.1, 0.40, 0.41, 12.0), (1.0, 0.42, 0.42, 20.0), (10.0, 0.6, 0.55, 40.0)):
        rows = table(run_rows(16, regularizer="sws", reg_strength=lam, test_error=te))
        rows["quantized_test_error"], rows["compression"] = q, c
        runs.append(rows)
    fig = figures.figure("lambda").draw(pd.concat(runs))
    ax, right = fig.axes
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels[:3] == ["train", "test", "test, quantized"] and "sws" in ax.get_xlabel()
    x, y = line(ax, 2)
    assert np.allclose(x, [0.1, 1, 10]) and np.allclose(y, [0.55, 0.42, 0.41])  # ordered by 1/λ
    x, y = line(right, 0)
    assert np.allclose(x, [0.1, 1, 10]) and np.allclose(y, [40, 20, 12]) and "compression" in right.get_ylabel()


def test_the_peak_is_the_bump_after_the_first_descent_not_the_smallest_model():
    errors = {2: 0.7, 4: 0.5, 8: 0.45, 16: 0.55, 32: 0.5, 64: 0.4}
    final = table(*[run_rows(w, test_error=e, train_error=0.0 if w >= 16 else 0.3) for w, e in errors.items()])
    v = analysis.verdict(analysis.final(final), "width")
    assert (v.mean["first_min_step"], v.mean["peak_step"], v.mean["second_min_step"]) == (8, 16, 64)
    assert v.seeds == 1 and v.text().startswith("1 seed (no confidence): min 0.45 at width 8, peak 0.55 at 16")


def test_sws_figure_draws_the_recorded_histogram_and_means():
    df = sws_run()
    fig = figures.figure("sws").draw(df)
    hist_ax, mu_ax = fig.axes[:2]
    heights = [b.get_height() for b in hist_ax.patches]
    assert np.allclose(heights, np.array([0, 10, 30, 10]) / (50 * 0.1))  # a density: counts / (total * bin width)
    x, y = line(hist_ax, 0)  # the mixture density at the last evaluation
    peak = 0.9 / (0.01 * np.sqrt(2 * np.pi))
    assert np.isclose(y.max(), peak, rtol=0.05) and abs(x[np.argmax(y)]) < 0.002
    assert np.allclose(line(mu_ax, 1)[1], 0.1 * np.arange(len(df)))  # the second mean over training
    with pytest.raises(ValueError, match="soft-weight-sharing"):
        figures.figure("sws").draw(table(run_rows(4)))


def test_every_figure_is_available_on_a_full_table_and_draw_saves_it(tmp_path):
    df = pd.concat([table(*[run_rows(w, n_train=n, val_loss=[2, 1, 0.5, 0.7, 0.9]) for w in (4, 8) for n in (100, 400)],
                          run_rows(8, reg_strength=0.1), run_rows(8, reg_strength=1.0)), sws_run()], ignore_index=True)
    ridge = ["ridge-n", "ridge-p", "ridge-heatmap"]  # need linear ridge runs: tests/test_theory_presets.py
    assert figures.available(df) == [f for f in figures.figures() if f not in ridge]
    assert all("ridge runs" in figures.availability(df)[f] for f in ridge)
    # 9.9, 9.10, 9.11 and heatmap are saved by the `figures` command test below
    for figure in ("9.9-early", "lambda", "sws"):
        out = figures.draw(df, figure, tmp_path / figures.filename(figure), eps=0.01, dpi=40)
        assert out.stat().st_size > 2_000
    with pytest.raises(ValueError, match="choose one of"):
        figures.draw(df, "9.12", tmp_path / "x.png")


# ---------------------------------------------------------------- the commands that read the records

def _results(tmp_path, df):
    for run_id, rows in df.groupby("run_id"):
        store.write_run(rows.reset_index(drop=True), store.run_path(tmp_path / "synthetic", run_id))
    return tmp_path


def test_figures_command_draws_what_the_axes_allow_and_ls_shows_emc(tmp_path):
    df = table(*[run_rows(w, n_train=n, train_error=[0.9, 0.5, 0.2, 0.0, 0.0 if n <= w * 25 else 0.3])
                 for w in (4, 8, 16) for n in (100, 400)])
    res = _results(tmp_path, df)
    r = CliRunner().invoke(app, ["figures", str(res)])
    assert r.exit_code == 0, r.output
    folder = res / "synthetic"
    assert sorted(p.name for p in (folder / "_figures").glob("*.png")) == ["fig9_10.png", "fig9_11.png", "fig9_9.png",
                                                                          "fig_heatmap.png"]
    assert "figure lambda skipped" in r.output and "figure 9.9-early skipped" in r.output
    r = CliRunner().invoke(app, ["ls", str(folder)])
    assert r.exit_code == 0
    emc = [ln for ln in r.output.splitlines() if "effective model complexity" in ln]
    assert len(emc) == 1 and emc[0].endswith("by width: 4: 100, 8: 100, 16: 400")
    r = CliRunner().invoke(app, ["plot", str(folder), "--figure", "lambda"])
    assert r.exit_code == 2 and "reg_strength" in r.output
    r = CliRunner().invoke(app, ["plot", str(folder), "--figure", "9.11", "--widths", "4,16", "-o", str(tmp_path / "s.png")])
    assert r.exit_code == 0 and (tmp_path / "s.png").exists()


def test_plot_draws_the_figure_the_records_allow_and_refuses_one_they_do_not(tmp_path):
    # one width over epochs: drawn model-wise it would be a lone dot, so `auto` draws 9.10 and 9.9 is refused
    res = _results(tmp_path, table(run_rows(8), run_rows(8, seed=1)))
    folder = res / "synthetic"
    r = CliRunner().invoke(app, ["plot", str(folder)])
    assert r.exit_code == 0 and r.output.strip().endswith("fig9_10.png"), r.output
    r = CliRunner().invoke(app, ["plot", str(folder), "--figure", "9.9"])
    assert r.exit_code == 2 and "needs at least 2 widths" in r.output and "allow: 9.10" in r.output
    # a sample-wise sweep is also model-wise; `auto` draws the more specific figure
    many = table(*[run_rows(w, n_train=n) for w in (4, 8) for n in (100, 400)])
    assert figures.choose(many) == "9.11" and figures.choose(many.query("n_train == 100")) == "9.9"


def test_a_hyperparameter_sweep_draws_a_curve_per_value_each_with_its_seed_band(tiny, tmp_path):
    """optim.lr=0.01,0.1 with two seeds: two test curves (and two train curves), each banded over its 2 seeds,
    never one curve averaging four runs as "4 seeds"; ls and the table get an lr column."""
    from conftest import cli

    res = tmp_path / "r"
    assert cli("sweep", "optim.lr=0.01,0.1", "width=4,8", *tiny, "seed=0,1", "epochs=2", "--results", str(res),
               "--no-plot").returncode == 0
    df = store.load(res / "fig9_9")
    assert set(df["optim.lr"]) == {0.01, 0.1}
    ax = figures.figure("9.9").draw(df).axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert [lb.split(":")[0] for lb in labels] == ["train, lr=0.01", "test, lr=0.01", "train, lr=0.1", "test, lr=0.1"]
    assert len(ax.collections) == 4 and ax.get_title().splitlines()[0].endswith("2 seeds")
    title = " ".join(ax.get_title().split())
    assert "lr=0.01: double descent in 0 of 2 seeds" in title and "lr=0.1: double descent in 0 of 2 seeds" in title
    for ln, band in zip(ax.get_lines(), ax.collections):  # each band spans its own curve's seeds
        lo, hi = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
        assert lo <= ln.get_ydata().min() and ln.get_ydata().max() <= hi
    assert cli("ls", str(res)).stdout.splitlines()[0].split()[-1] == "lr"
