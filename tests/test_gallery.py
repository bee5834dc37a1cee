"""A gallery that cannot go stale: every figure the README shows was drawn by scripts/gallery.py with this
checkout's figure code (the hash in its metadata equals ddescent.figures.code_hash()), from the command the README
gives for it. After a change to the figure code: `python scripts/gallery.py` (records are kept in results/, so a
redraw takes seconds)."""

import importlib.util
import re
from pathlib import Path

import pytest

from ddescent import figures
from ddescent.version import __version__

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SHOWN = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", README)


def _gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_exactly_the_gallerys_images():
    assert sorted(Path(p).name for p in SHOWN) == sorted(_gallery().GALLERY)


@pytest.mark.parametrize("image", SHOWN)
def test_every_image_was_drawn_by_this_figure_code_from_the_readmes_command(image):
    meta = _gallery().metadata_of(ROOT / image)
    assert meta.get("Figure code") == figures.code_hash(), \
        f"{image} was drawn by other figure code: run `python scripts/gallery.py {Path(image).stem}`"
    assert meta.get("ddescent version") == __version__
    assert f"`{meta['Command']}`" in README  # the command the README gives, in backquotes
