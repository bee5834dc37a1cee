"""The format version of an experiment folder (`<results>/<experiment>/`, where its runs and their locks live).

    <results>/<experiment>/.ddescent-format.json    {"format": 2, "written_by": "0.3.0"}

Every sweep that writes into a folder reads the marker first (`use`, before it cleans or trains anything): a
folder of a newer format than this version writes is refused in one line (exit 2); a folder without a marker, or
of an older format, is marked with this version's format (written atomically: a reader sees the old marker or the
new one, never half of one).

Versions from before the marker (0.1 to 0.3) cannot read it, so the folder stays in a form they handle safely
instead: run files keep their name (`runs/<run_id>.parquet`) and the columns every version requires, so an older
version counts a run stored here as done and never trains or writes it again (unless told --force); this
version's locks are ones every older version honours (see store.locks), and it honours theirs (0.1's pid-only
locks included), so two versions on one folder never train one run twice. What an older version writes into the
folder is checked like any run file (store.check_run) before it counts as done.

Format history: 1, folders without a marker (0.1 to 0.3); 2, the marker, this version.
"""

from __future__ import annotations

import json
from pathlib import Path

from ddescent.errors import ConfigError

FORMAT = 2
MARKER = ".ddescent-format.json"


def marker(folder: str | Path) -> Path:
    return Path(folder) / MARKER


def read(folder: str | Path) -> dict | None:
    """The folder's marker ({"format": int, "written_by": version}), or None where there is none. A marker that
    cannot be read is bad input (ConfigError): this version cannot tell whether it may write there."""
    path = marker(folder)
    if not path.exists():
        return None
    try:
        blob = json.loads(path.read_text())
        if not isinstance(blob, dict) or not isinstance(blob.get("format"), int) or blob["format"] < 1:
            raise ValueError("no format number")
        return blob
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a format marker this version can read ({exc}); if the folder is yours, "
                          "delete the file and rerun") from exc


def check(folder: str | Path) -> dict | None:
    """The folder's marker, where this version may write into the folder; ConfigError (one line) for a folder of
    a newer format."""
    from ddescent.version import __version__

    found = read(folder)
    if found is not None and found["format"] > FORMAT:
        raise ConfigError(f"{folder} holds results of folder format {found['format']} (written by ddescent "
                          f"{found.get('written_by', '?')}); this ddescent {__version__} writes format {FORMAT} and "
                          "would mix them: upgrade ddescent, or use another --results")
    return found


def use(folder: str | Path) -> None:
    """Before writing into `folder`: refuse a folder of a newer format (check); mark one without a marker, or of an
    older format, as this version's."""
    from ddescent.store.runs import write_atomic
    from ddescent.version import __version__

    found = check(folder)
    if found is None or found["format"] < FORMAT:
        blob = json.dumps({"format": FORMAT, "written_by": __version__}, sort_keys=True).encode()
        write_atomic(marker(folder), lambda f: f.write(blob))
