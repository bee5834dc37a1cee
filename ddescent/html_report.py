"""`ddescent report`: one self-contained HTML file of a results folder, to send a colleague or open from a file share.

Per experiment: every figure its records allow (PNG, inline as data: URIs), the verdicts and theory agreement that
`ls` prints (ddescent.listing: one definition of a double descent, its seeds and intervals), the run table
(click a header to sort), what varies and what is fixed, each run's full config on demand, and provenance. No
network requests: the page's Content-Security-Policy allows only inline styles, inline script and data: images,
so a page opened offline shows everything. Plain HTML with a little inline CSS and JS; no template engine: the
page is a few loops and html.escape does the quoting.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
from pathlib import Path

import pandas as pd

from ddescent import analysis, figures, listing, query, spec
from ddescent.version import __version__

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
DPI = 80  # a gallery experiment's figures stay well under a megabyte each
PIXELS = 3e6  # at most: a figure of many panels is drawn at a lower dpi rather than as a 7-megapixel image

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:right;vertical-align:top}
th{background:#f4f4f4;cursor:pointer;white-space:nowrap}th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
td.text{text-align:left}ul.verdicts li{margin:.3rem 0}pre{white-space:pre-wrap;font-size:.8rem;margin:0;text-align:left}
.muted{color:#666}.skipped{color:#777;font-size:.9rem}
"""

# Sorting on a header click; with #selftest in the address the page checks itself (images decoded, a table sorts,
# no error and no blocked request) and writes what it found into #selftest, for a headless browser to read.
SCRIPT = """
const problems=[];
window.addEventListener('error',e=>problems.push('error: '+e.message));
document.addEventListener('securitypolicyviolation',e=>problems.push('blocked: '+e.blockedURI));
function cellValue(td){const v=td.dataset.v;if(v===undefined)return td.textContent;const n=parseFloat(v);return isNaN(n)?v:n;}
function sortBy(th){
  const table=th.closest('table'),body=table.tBodies[0],i=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('asc');
  [...th.parentNode.children].forEach(h=>h.classList.remove('asc','desc'));th.classList.add(asc?'asc':'desc');
  const rows=[...body.rows].sort((a,b)=>{const x=cellValue(a.cells[i]),y=cellValue(b.cells[i]);
    return (x<y?-1:x>y?1:0)*(asc?1:-1);});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('table.runs th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
function selftest(){
  const imgs=[...document.images];
  const sizes=imgs.map(i=>[i.complete,i.naturalWidth,i.naturalHeight]);
  let sorts=null;const table=document.querySelector('table.runs');
  if(table){const heads=[...table.tHead.rows[0].cells];const th=heads.find(h=>h.textContent==='test_error')||heads.find(h=>h.dataset.numeric==='1');
    if(th){const i=heads.indexOf(th);const col=()=>[...table.tBodies[0].rows].map(r=>cellValue(r.cells[i]));
      th.click();const up=col();th.click();const down=col();
      sorts={column:th.textContent.trim(),ascending:up.every((v,k)=>k===0||up[k-1]<=v),
             descending:down.every((v,k)=>k===0||down[k-1]>=v),rows:up.length};}}
  const out=document.getElementById('selftest');
  out.textContent=JSON.stringify({images:sizes,sorts:sorts,problems:problems});
}
if(location.hash==='#selftest'){window.addEventListener('load',selftest);}
"""


def write(df: pd.DataFrame, path: str | Path, *, where: str | None = None, eps: float = 0.01) -> Path:
    """Write the report of the records `df` (optionally only the runs `where` selects) to `path`."""
    out = Path(path)
    text = render(query.where(df, where), eps=eps, title=f"ddescent report: {out.stem}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def render(df: pd.DataFrame, *, eps: float = 0.01, title: str = "ddescent report") -> str:
    """The whole page as one string."""
    if df.empty:
        raise ValueError("no runs to report")
    experiments = sorted(df["experiment"].dropna().unique()) if "experiment" in df else ["results"]
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             f"<meta http-equiv='Content-Security-Policy' content=\"{POLICY}\">",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             f"<p class='muted'>Written {datetime.datetime.now().astimezone().isoformat(timespec='seconds')} by "
             f"ddescent {_e(__version__)} from {df['run_id'].nunique()} runs in {len(experiments)} experiment(s): "
             + ", ".join(f"<a href='#{_anchor(x)}'>{_e(x)}</a>" for x in experiments) + ".</p>",
             "<p class='muted'>A curve <b>double-descends</b> when its test error has a peak at least 10% above the "
             "lowest point on each side; verdicts give how many seeds show it and the seed mean's ratios with "
             "95% t intervals; bands are 95% intervals of the seed mean (ddescent.analysis).</p>"]
    for name in experiments:
        rows = df[df["experiment"] == name] if "experiment" in df else df
        parts.append(_experiment(name, rows, eps))
    parts.append(f"<pre id='selftest' hidden></pre><script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _experiment(name: str, df: pd.DataFrame, eps: float) -> str:
    fin = analysis.final(df)
    statuses = fin["status"].value_counts().to_dict()
    head = [f"<section id='{_anchor(name)}'><h2>{_e(name)}</h2>",
            "<p>" + f"{len(fin)} runs: " + ", ".join(f"{n} {_e(s)}" for s, n in statuses.items()) + "</p>"]
    head.append(_provenance(fin))
    verdicts = [line for line in listing.summary_lines(df, eps)[len(fin) + 1:]
                 if not line.startswith("  ") and not line.endswith(":")]  # (not the run-by-run lines)
    if verdicts:
        head.append("<h3>Verdicts</h3><ul class='verdicts'>"
                    + "".join(f"<li>{_e(line)}</li>" for line in verdicts) + "</ul>")
    head.append("<h3>Figures</h3>")
    skipped = []
    for figure_name, reason in figures.availability(df).items():
        if reason is None:
            try:
                head.append(_figure(df, figure_name, eps))
                continue
            except ValueError as exc:
                reason = str(exc)
        skipped.append(f"<li>{_e(figure_name)}: {_e(reason)}</li>")
    if skipped:
        head.append(f"<details class='skipped'><summary>{len(skipped)} figures these records do not allow</summary>"
                    f"<ul>{''.join(skipped)}</ul></details>")
    flat = pd.DataFrame([spec.flat(c) for c in fin["config"]], index=fin["run_id"])
    varies = [k for k in flat.columns if flat[k].map(_show).nunique() > 1]
    head.append(_settings(flat, varies))
    head.append(_runs(fin, flat[varies]))
    head.append("</section>")
    return "\n".join(head)


def write_comparison(c, fig, path: str | Path) -> Path:
    """`ddescent compare --html`: the comparison's figure, config diff and verdict table as one page."""
    rows = "".join(f"<tr><td class='text'>{_e(k)}</td><td class='text'>{_e(va)}</td><td class='text'>{_e(vb)}</td>"
                   "</tr>" for k, va, vb in c.diff)
    verdicts = "".join("<tr>" + "".join(f"<td class='text'>{_e(r[k])}</td>" for k in ("what", "A", "B", "change"))
                       + "</tr>" for r in c.verdicts.to_dict("records"))
    page = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<meta http-equiv='Content-Security-Policy' content=\"{POLICY}\">",
            f"<title>{_e(c.a.name)} vs {_e(c.b.name)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{_e(c.a.name)} vs {_e(c.b.name)} along {_e(c.on)}</h1>",
            f"<p>A = {_e(c.a.name)}: {_e(c.a.label)}<br>B = {_e(c.b.name)}: {_e(c.b.label)}</p>",
            f"<figure><img alt='comparison' src='data:image/png;base64,{_png(fig)}'></figure>",
            "<h2>Verdicts</h2><table><tr><th>landmark</th><th>A</th><th>B</th><th>change</th></tr>"
            f"{verdicts}</table>",
            "<h2>Config diff</h2><table><tr><th>setting</th><th>A</th><th>B</th></tr>"
            f"{rows or '<tr><td colspan=3>none</td></tr>'}</table>",
            f"<p class='muted'>ddescent {_e(__version__)}</p></body></html>"]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(page), encoding="utf-8")
    return out


def _png(fig) -> str:
    buffer = io.BytesIO()
    width, height = fig.get_size_inches()
    fig.savefig(buffer, format="png", dpi=min(DPI, (PIXELS / (width * height)) ** 0.5), bbox_inches="tight",
                pad_inches=0.1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(df: pd.DataFrame, name: str, eps: float) -> str:
    import matplotlib.pyplot as plt

    fig = figures.render(df, name, eps=eps)
    try:
        data = _png(fig)
    finally:
        plt.close(fig)
    summary = figures.figure(name).summary
    return (f"<figure><img alt='{_e(name)}: {_e(summary)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(name)}: {_e(summary)} (<code>ddescent plot RESULTS --figure {_e(name)}</code>)"
            "</figcaption></figure>")


def _show(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _settings(flat: pd.DataFrame, varies: list[str]) -> str:
    """What varies among the runs (with its values) and what is the same for all of them."""
    def values(key):
        return sorted(set(flat[key].map(_show)), key=lambda v: (len(v), v))

    rows = "".join(f"<tr><td class='text'>{_e(k)}</td><td class='text'>{_e(', '.join(values(k)[:12]))}"
                   f"{' …' if len(values(k)) > 12 else ''}</td></tr>" for k in sorted(varies))
    fixed = [k for k in sorted(flat.columns) if k not in varies]
    same = "".join(f"<tr><td class='text'>{_e(k)}</td><td class='text'>{_e(_show(flat[k].iloc[0]))}</td></tr>"
                   for k in fixed)
    return ("<h3>What varies</h3>" + (f"<table>{rows}</table>" if rows else "<p>nothing: one run</p>")
            + f"<details><summary>What is the same for every run ({len(fixed)} settings)</summary>"
              f"<table>{same}</table></details>")


def _provenance(fin: pd.DataFrame) -> str:
    def values(col):
        return ", ".join(sorted({str(v) for v in fin[col].dropna()})) if col in fin else "-"

    start = fin["started_at"].dropna().min() if "started_at" in fin else None
    end = fin["finished_at"].dropna().max() if "finished_at" in fin else None
    return (f"<p class='muted'>ddescent {_e(values('ddescent_version'))}; commit {_e(values('git_commit') or '-')}; "
            f"host {_e(values('host'))}; device {_e(values('device'))}; torch {_e(values('torch_version'))}; "
            f"trained {_e(str(start))} to {_e(str(end))}</p>")


COLUMNS = ["run_id", "status", "model", "width", "n_params", "n_train", "label_noise", "reg_strength", "seed",
           "data_seed", "epoch", "train_error", "test_error", "train_loss", "test_loss"]


def _runs(fin: pd.DataFrame, own: pd.DataFrame) -> str:
    """The run table; each run's config on demand: the settings in which it differs from the others (with the
    settings every run shares, above, that is the whole config)."""
    table = listing.run_table(fin)
    extra = [c for c in analysis.varying(table, exclude=tuple(COLUMNS) + ("experiment",)) if c in table]
    cols = [c for c in COLUMNS if c in table] + extra
    numeric = {c: pd.api.types.is_numeric_dtype(table[c]) for c in cols}
    head = "".join(f"<th data-numeric='{int(numeric[c])}'>{_e(c)}</th>" for c in cols) + "<th>config</th>"
    body = []
    for r in table.to_dict("records"):
        cells = []
        for c in cols:
            v = r[c]
            if numeric[c] and not analysis.missing(v):
                cells.append(f"<td data-v='{float(v)!r}'>{_e(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>")
            else:
                cells.append(f"<td class='text'>{_e(analysis.show(v) if not analysis.missing(v) else '-')}</td>")
        config = "\n".join(f"{k}: {_show(v)}" for k, v in own.loc[r["run_id"]].items())
        cells.append(f"<td class='text'><details><summary>show</summary><pre>{_e(config)}</pre></details></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h3>Runs</h3><p class='muted'>click a header to sort; a run's config: its own settings, with the "
            f"settings every run shares above</p><table class='runs'><thead><tr>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(name: str) -> str:
    return "x-" + "".join(ch if ch.isalnum() else "-" for ch in str(name))
