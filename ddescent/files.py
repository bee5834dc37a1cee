"""Writing files so that a reader never sees half of one: write a temporary dot-file beside the target, flush
and fsync it, then os.replace it into place (and fsync the folder, so the rename itself survives a power cut).
Every file ddescent writes for others to read goes through `write_atomic`."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, IO


def umask() -> int:
    """The process's file-creation mask (os.umask can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stamp(path) -> list[int]:
    """What a file's content is known by without reading it: size, mtime, inode and ctime. An edit in place can
    restore the first three (os.utime sets mtime back), not ctime, which every write and utime moves to now."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class NotRegular(OSError):
    """What `open_regular` raises for a FIFO, device, socket or folder."""


def open_regular(path, mode: str = "rb"):
    """open(path, mode) for reading, refusing what is not a regular file (NotRegular) without blocking on it: a
    FIFO put where a file belongs would otherwise hang the reader until someone writes to it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # (opening a FIFO's read end never waits)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(f"{path}: not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object], prefix: str | None = None) -> None:
    """Call write(file) on a temporary dot-file beside `path`, fsync it, then move it into place with os.replace.

    `prefix` names the temporary file (default `.<name>.`); the store puts its writer's host and process there so
    that a later sweep can remove the leftovers of dead writers. The file gets the permissions of a plain open()
    (0644 under the umask), not mkstemp's 0600. On any failure the temporary file is removed and `path` is left
    as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))
