"""`ddescent data fetch|ls`: get the file datasets once, verified; see what is there. Mount with
`app.add_typer(fetch_cli.app, name="data")`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ddescent.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Download CIFAR-10, MNIST and Fashion-MNIST (SHA-256 checked) and list what is present.")

ROOT = typer.Option(None, "--root", help="Data root (default: $DDESCENT_DATA, else ./datasets, as data.root).")


def _fail(message: str) -> None:
    typer.echo(f"ddescent: error: {message}", err=True)
    raise typer.Exit(2)


class _Lines:
    """One line per finished file: for logs and pipes."""

    def __call__(self, name: str, done: int, total: Optional[int]) -> None:
        if total is not None and done == total:
            typer.echo(f"{name}: {done} bytes downloaded", err=True)

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar per file, on a terminal."""

    def __init__(self):
        self.bar, self.name = None, None

    def __call__(self, name: str, done: int, total: Optional[int]) -> None:
        from tqdm import tqdm

        if self.bar is None or name != self.name or done == 0:
            self.close()
            self.bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                            file=sys.stderr, leave=True)
            self.name = name
        self.bar.update(done - self.bar.n)
        if total is not None and done == total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@app.command()
def fetch(name: str = typer.Argument(..., help="cifar10, mnist or fashion_mnist."), root: Optional[Path] = ROOT):
    """Download NAME's official files, check their SHA-256 and put them where data.root's reader looks."""
    from ddescent.data import fetch as fx

    shown = _Bar() if sys.stderr.isatty() else _Lines()
    calls = []

    def progress(file: str, done: int, total: Optional[int]) -> None:
        calls.append(file)
        shown(file, done, total)

    try:
        folder = fx.fetch(name, root, progress=progress)
    except ConfigError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _fail(str(exc))
    finally:
        shown.close()
    verb = "downloaded and verified" if calls else "already present and verified"
    typer.echo(f"{name}: {verb} in {folder} (data.root={fx.default_root(root)})")


@app.command("ls")
def ls_(root: Optional[Path] = ROOT):
    """One line per dataset: state, files verified, where; then each present dataset's files that are not verified."""
    from ddescent.data import fetch as fx

    try:
        typer.echo(f"data root {fx.default_root(root)}")
    except ConfigError as exc:  # a root that cannot be resolved (a symlink loop): one line
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _fail(str(exc))
    for d in fx.status(root):
        typer.echo(f"{d['name']:14} {d['state']:9} {len(d['verified'])}/{len(d['files'])} verified  {d['folder']}")
        for f in d["files"] if d["state"] != "missing" else ():
            if f["state"] != "verified":
                typer.echo(f"    {f['name']}: {f['state']}" + (f" ({f['path']})" if f["path"] else ""))
