"""Download CIFAR-10, MNIST and Fashion-MNIST once, verified, into the layout the readers already accept.

`fetch(name)` gets the official files, checks each download's SHA-256 against the table below, and puts them
where `ddescent.data.mnist` / `ddescent.data.cifar10` look: `<root>/mnist/*.gz`, `<root>/fashion_mnist/*.gz`,
`<root>/cifar-10-batches-py/`. Nothing half-done is ever visible: a download goes to a temporary dot-file in
the target folder, is verified, and only then renamed into place; the CIFAR-10 archive is unpacked into a
temporary dot-folder, its members checked, and then renamed into place. Any failure removes the temporaries.

Files already there are not fetched again. Verification results are remembered in `<root>/.ddescent-verified.json`
by (size, mtime, inode, ctime), so a second call reads one small file and stats a few others; a file that changed
is hashed again. Without a connection `fetch` fails with one line saying which files to copy where by hand.

Only the standard library is used (urllib, tarfile, hashlib), so fetching needs nothing beyond the install.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from ddescent.errors import ConfigError
from ddescent.files import stamp, umask, write_text_atomic
from ddescent.version import __version__

DEFAULT_ROOT = "datasets"  # as conf/data/{mnist,fashion_mnist,cifar10}.yaml: ${oc.env:DDESCENT_DATA,datasets}
TIMEOUT = 30.0             # seconds, per connection attempt and per socket read ($DDESCENT_FETCH_TIMEOUT)
STALL_BYTES = 1024         # a download that brings fewer bytes than this in TIMEOUT seconds has stalled
CHUNK = 1 << 20
CACHE_NAME = ".ddescent-verified.json"

Progress = Callable[[str, int, Optional[int]], None]  # (file name, bytes done, total bytes or None)


@dataclass(frozen=True)
class File:
    """One file: its published name, a digest "sha256:<hex>" or "md5:<hex>", and the mirrors to try in order."""

    name: str
    digest: str
    urls: tuple[str, ...] = ()
    size: Optional[int] = None


@dataclass(frozen=True)
class Source:
    """What a reader needs (`files`, in `folder` under the root) and how to get it.

    Without `archive`, every file is downloaded on its own (MNIST's four .gz files). With one, the archive holds
    `folder/` and every file in it (CIFAR-10's tar.gz, whose members are checked with `files`' digests).
    `also` lists further folders the reader searches, in its order, after `folder`; `raw_ok`: the reader also
    accepts each file uncompressed (its name without .gz), which no published digest covers.
    """

    name: str
    folder: str
    files: tuple[File, ...]
    archive: Optional[File] = None
    also: tuple[str, ...] = ()
    raw_ok: bool = False


# ----------------------------------------------------------------------------- the table of official files
#
# SHA-256 of the downloads:
# - MNIST: TensorFlow Datasets, tensorflow_datasets/url_checksums/mnist.txt (sizes and SHA-256 of the same four
#   files on storage.googleapis.com/cvdf-datasets/mnist/); the same four values are in torchvision's prototype
#   datasets (torchvision/prototype/datasets/_builtin/mnist.py, for yann.lecun.com). torchvision's current code
#   lists one MD5 per file for both LeCun's site and the ossci-datasets mirror: all mirrors serve the same bytes.
# - Fashion-MNIST: TensorFlow Datasets, tensorflow_datasets/url_checksums/fashion_mnist.txt (sizes and SHA-256
#   for fashion-mnist.s3-website.eu-central-1.amazonaws.com); the same in torchvision's prototype mnist.py.
#   The zalandoresearch/fashion-mnist repository serves the same files from data/fashion/.
# - CIFAR-10 python archive: Keras, keras/src/datasets/cifar10.py (and tensorflow/python/keras/datasets/
#   cifar10.py), file_hash of https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (170498071 bytes).
# MD5 of the archive's members (damage checks of an unpacked folder, whoever unpacked it): torchvision,
# torchvision/datasets/cifar.py (train_list, test_list, meta). The archive itself is authenticated by SHA-256.

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")


def _mirrored(mirrors: tuple[str, ...], files: dict[str, tuple[str, int]]) -> tuple[File, ...]:
    return tuple(File(name, f"sha256:{sha}", tuple(m + name for m in mirrors), size) for name, (sha, size) in files.items())


SOURCES: dict[str, Source] = {
    "mnist": Source("mnist", "mnist", _mirrored(_MNIST_MIRRORS, {
        "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    }), also=("", "MNIST/raw"), raw_ok=True),
    "fashion_mnist": Source("fashion_mnist", "fashion_mnist", _mirrored(_FASHION_MIRRORS, {
        "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    }), also=("", "FashionMNIST/raw"), raw_ok=True),
    "cifar10": Source("cifar10", "cifar-10-batches-py", tuple(File(name, f"md5:{md5}") for name, md5 in (
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    )), archive=File("cifar-10-python.tar.gz",
                     "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                     ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), 170498071)),
}


# ----------------------------------------------------------------------------- public API


def default_root(root=None) -> Path:
    """`root`, else $DDESCENT_DATA, else ./datasets: the data configs' default, resolved as the readers do."""
    from ddescent.data.base import data_root

    if root is None:
        return data_root(os.environ.get("DDESCENT_DATA", DEFAULT_ROOT))
    return data_root(root, "--root")


def fetch(name: str, root=None, *, sources: Optional[Source] = None, progress: Optional[Progress] = None) -> Path:
    """Make `name` (cifar10, mnist, fashion_mnist) present and verified under `root`; return its folder.

    A no-op when every file the reader would read is already there and verified (an uncompressed IDX file counts
    as there: no published digest covers it); otherwise only what is missing or damaged is downloaded.
    `progress(file, done, total)` is called at the start of each download (done = 0) and after each chunk; a
    complete download ends with done == total (total: Content-Length, else the table's size, else the bytes read).
    `sources` replaces the table entry: for tests only, not a user setting.
    Raises ConfigError (one line) on a failed download, a checksum mismatch or an unsafe archive.
    """
    spec = sources if sources is not None else _spec(name)
    root = default_root(root)
    verifier = _Verifier(root)
    try:
        todo = [f for f in spec.files if _state(spec, root, f, verifier)[1] not in ("verified", "unverified")]
        if todo:
            try:
                made = _make_dirs(root if spec.archive is not None else root / spec.folder)
            except OSError as exc:
                raise ConfigError(f"fetch {spec.name}: cannot create {_one_line(exc)}") from None
            try:
                if spec.archive is not None:
                    _fetch_archive(spec, root, todo, verifier, progress)
                else:
                    for i, f in enumerate(todo):
                        _fetch_file(spec, root, f, todo[i:], verifier, progress)
            finally:
                _remove_if_empty(made)
        located = _state(spec, root, spec.files[0], verifier)[0]
        return located.parent if located is not None else root / spec.folder
    finally:
        verifier.save()


def status(root=None, *, verify: bool = True) -> list[dict]:
    """One dict per dataset: name, folder, state (complete | partial | missing | damaged) and its files.

    Each file: name, path (what the reader would read, or None) and state: verified, unverified (an uncompressed
    IDX file, which no published digest covers), damaged (digest mismatch), present (verify=False) or missing.
    Lists `present`, `verified`, `missing` and `damaged` give the names per state.
    """
    root = default_root(root)
    verifier = _Verifier(root)
    out = []
    try:
        for spec in SOURCES.values():
            files = []
            for f in spec.files:
                path, state = _state(spec, root, f, verifier, verify=verify)
                files.append({"name": f.name, "path": None if path is None else str(path), "state": state})
            states = [f["state"] for f in files]
            overall = ("damaged" if "damaged" in states else "missing" if all(s == "missing" for s in states)
                       else "partial" if "missing" in states else "complete")
            out.append({"name": spec.name, "folder": str(root / spec.folder), "state": overall, "files": files,
                        "present": [f["name"] for f in files if f["state"] != "missing"],
                        "verified": [f["name"] for f in files if f["state"] == "verified"],
                        "missing": [f["name"] for f in files if f["state"] == "missing"],
                        "damaged": [f["name"] for f in files if f["state"] == "damaged"]})
    finally:
        verifier.save()
    return out


# ----------------------------------------------------------------------------- what is there


def _spec(name: str) -> Source:
    if name not in SOURCES:
        raise ConfigError(f"unknown dataset {name!r}; can fetch: {', '.join(SOURCES)}")
    return SOURCES[name]


def _candidates(spec: Source, root: Path, f: File) -> list[tuple[Path, bool]]:
    """(path, uncompressed) in the reader's search order (ddescent.data.mnist._find): each folder, raw before .gz."""
    out = []
    for folder in (spec.folder, *spec.also):
        directory = root / folder if folder else root
        if spec.raw_ok and f.name.endswith(".gz"):
            out.append((directory / f.name[:-3], True))
        out.append((directory / f.name, False))
    return out


def _state(spec: Source, root: Path, f: File, verifier: "_Verifier", verify: bool = True):
    """(path the reader would read or None, state)."""
    for path, raw in _candidates(spec, root, f):
        if path.is_file():
            if raw:
                return path, "unverified"
            if not verify:
                return path, "present"
            return path, "verified" if verifier.check(path, f.digest) else "damaged"
    return None, "missing"


class _Verifier:
    """Digests of files under root, remembered by (size, mtime_ns, inode) in root/.ddescent-verified.json."""

    def __init__(self, root: Path):
        self.root, self.path, self.dirty = root, root / CACHE_NAME, False
        try:
            self.known = json.loads(self.path.read_text())
            if not isinstance(self.known, dict):
                self.known = {}
        except (OSError, ValueError):
            self.known = {}

    def _key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        return stamp(path)

    def check(self, path: Path, digest: str) -> bool:
        algo, expected = digest.split(":", 1)
        entry = self.known.get(self._key(path))
        stamp = self._stamp(path)
        if not (isinstance(entry, dict) and entry.get("stamp") == stamp and algo in entry):
            entry = {"stamp": stamp, algo: _hash_file(path, algo)}
            self.known[self._key(path)] = entry
            self.dirty = True
        return entry[algo] == expected.lower()

    def record(self, path: Path, algo: str, hexdigest: str) -> None:
        self.known[self._key(path)] = {"stamp": self._stamp(path), algo: hexdigest}
        self.dirty = True

    def save(self) -> None:
        """Atomically; a read-only root just means hashing again next time."""
        if not self.dirty or not self.root.is_dir():
            return
        self.known = {k: v for k, v in self.known.items() if (self.root / k).is_file()}
        try:
            write_text_atomic(self.path, json.dumps(self.known, sort_keys=True))
        except OSError:
            pass


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- getting it


class _WriteError(Exception):
    pass


class _DownloadFailed(Exception):
    def __init__(self, reasons: list[str], offline: bool):
        super().__init__("; ".join(reasons))
        self.reasons, self.offline = reasons, offline


def _fetch_file(spec: Source, root: Path, f: File, remaining: list[File], verifier: _Verifier, progress) -> None:
    """One file downloaded, verified and renamed to root/folder/name (replacing a damaged one)."""
    folder = root / spec.folder
    try:
        tmp, hexdigest = _download(f, folder, progress)
    except _DownloadFailed as exc:
        raise ConfigError(_failure(spec, root, remaining, exc)) from None
    try:
        target = folder / f.name
        os.chmod(tmp, 0o644 & ~umask())
        os.replace(tmp, target)
        verifier.record(target, "sha256", hexdigest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fetch_archive(spec: Source, root: Path, todo: list[File], verifier: _Verifier, progress) -> None:
    """The archive downloaded and verified, unpacked into a dot-folder, checked, and moved into root/folder."""
    try:
        tmp, _ = _download(spec.archive, root, progress)
    except _DownloadFailed as exc:
        raise ConfigError(_failure(spec, root, todo, exc)) from None
    scratch = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", suffix=".tmp", dir=root))
    try:
        _unpack(tmp, scratch, spec.folder, spec.archive.name)
        tmp.unlink()
        unpacked = scratch / spec.folder
        digests = {}
        for f in spec.files:
            algo, expected = f.digest.split(":", 1)
            path = unpacked / f.name
            got = _hash_file(path, algo) if path.is_file() else None
            if got != expected.lower():
                raise ConfigError(f"{spec.archive.name} passed its SHA-256 check but "
                                  f"{spec.folder}/{f.name} in it is {'missing' if got is None else 'not as expected'}; "
                                  f"nothing was changed in {root}")
            digests[f.name] = (algo, got)
        target = root / spec.folder
        moved = False
        if not target.exists() or (target.is_dir() and not any(target.iterdir())):
            try:
                os.replace(unpacked, target)  # the whole folder at once
                moved = True
            except OSError:
                pass  # appeared meanwhile (another fetch): complete it file by file
        if not moved:
            wanted = {f.name for f in todo}
            for path in sorted(unpacked.iterdir()):
                dest = target / path.name
                if path.name in wanted or not dest.exists():
                    os.replace(path, dest)
        for name, (algo, hexdigest) in digests.items():
            if name in {f.name for f in todo} or moved:
                verifier.record(target / name, algo, hexdigest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if tmp.exists():
            tmp.unlink()


def _download(f: File, folder: Path, progress) -> tuple[Path, str]:
    """f into a dot-file in folder, from its first mirror that answers with the right SHA-256: (path, hex)."""
    algo, expected = f.digest.split(":", 1)
    if algo != "sha256":
        raise ValueError(f"{f.name}: downloads are checked by SHA-256, not {algo}")
    reasons, offline, wait = [], True, timeout()
    for url in f.urls:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise ConfigError(f"{f.name}: cannot write into {folder} ({_one_line(exc)})") from None
        tmp, keep = Path(name), False
        try:
            with os.fdopen(fd, "wb") as out:
                got, n, promised = _stream(url, out, f, progress, wait)
            if got == expected.lower():
                keep = True
                return tmp, got
            offline = False
            if f.size is not None and n > f.size:
                reasons.append(f"{url} sent more than the expected {f.size} bytes (refused)")
            elif promised is not None and n < promised:
                reasons.append(f"{url}: the connection broke off after {n} of {promised} bytes (refused)")
            else:
                reasons.append(f"{url} sent {n} bytes with SHA-256 {got}, expected {expected} "
                               f"(a damaged or truncated download, refused)")
        except _WriteError as exc:
            raise ConfigError(f"{f.name}: cannot write into {folder} ({_one_line(exc.__cause__)})") from None
        except _Stalled as exc:  # it answered, then stopped: another mirror may do better
            offline = False
            reasons.append(_one_line(exc))
        except urllib.error.HTTPError as exc:
            offline = False
            reasons.append(f"{url}: HTTP {exc.code} {_one_line(exc.reason)}")
        except (http.client.HTTPException, ValueError) as exc:  # the server broke off or answered nonsense
            offline = False
            reasons.append(f"{url}: {type(exc).__name__} {_one_line(exc)}")
        except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timeout, reset: no connection
            reasons.append(f"{url}: {_one_line(getattr(exc, 'reason', None) or exc)}")
        finally:
            if not keep and tmp.exists():
                tmp.unlink()
    raise _DownloadFailed(reasons, offline)


def timeout() -> float:
    """Seconds to wait for a connection, for each read, and for STALL_BYTES of progress: $DDESCENT_FETCH_TIMEOUT
    (a number > 0), else TIMEOUT."""
    text = os.environ.get("DDESCENT_FETCH_TIMEOUT", "").strip()
    try:
        value = float(text) if text else TIMEOUT
    except ValueError:
        raise ConfigError(f"DDESCENT_FETCH_TIMEOUT={text}: expected a number of seconds > 0") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"DDESCENT_FETCH_TIMEOUT={text}: expected a number of seconds > 0")
    return value


class _Stalled(Exception):
    pass


def _stream(url: str, out, f: File, progress, wait: float) -> tuple[str, int, Optional[int]]:
    """Copy url to out in chunks: (hex SHA-256, bytes, Content-Length). Stops past the expected size (a wrong file).
    A server that sends nothing for `wait` seconds, or fewer than STALL_BYTES in that long (a trickle that no read
    timeout catches), has stalled: _Stalled."""
    h = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": f"ddescent/{__version__}"})
    with urllib.request.urlopen(request, timeout=wait) as response:
        length = response.headers.get("Content-Length")
        promised = int(length) if length and length.isdigit() else None
        total = promised if promised is not None else f.size
        done = 0
        if progress:
            progress(f.name, 0, total)
        since, gained = time.monotonic(), 0  # the progress window: its start, and bytes since then
        while True:
            try:
                block = response.read1(CHUNK)  # what has arrived, without waiting for a whole chunk
            except TimeoutError:
                raise _Stalled(f"{url}: stalled, no data for {wait:g} s after {done} bytes "
                               f"(DDESCENT_FETCH_TIMEOUT={wait:g} s)") from None
            if not block:
                break
            try:
                out.write(block)
            except OSError as exc:  # disk full, quota: not the network's fault, no mirror will help
                raise _WriteError() from exc
            h.update(block)
            done += len(block)
            gained += len(block)
            if progress:
                progress(f.name, done, total)
            if f.size is not None and done > f.size:
                break
            now = time.monotonic()
            if gained >= STALL_BYTES:
                since, gained = now, 0
            elif now - since > wait:
                raise _Stalled(f"{url}: stalled, {gained} bytes in {now - since:.1f} s, {done} in all "
                               f"(DDESCENT_FETCH_TIMEOUT={wait:g} s)")
    if progress and total is None:  # the end, when no length was known
        progress(f.name, done, done)
    return h.hexdigest(), done, promised


def _unpack(archive: Path, dest: Path, top: str, label: str) -> None:
    """Regular files and folders under `top/` only, written by hand; any other member refuses the archive.

    Absolute names, `..`, links, devices and fifos are refused before anything of theirs is written; where this
    Python has tarfile.data_filter (3.11.4+, 3.12) it must accept each member too. Only `dest` is written to.
    """
    def refuse(member, why):
        raise ConfigError(f"{label}: refused, member {member.name!r} {why}; nothing was changed")

    dest_resolved = dest.resolve()
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
                    refuse(member, "has an absolute path")
                if ".." in parts or "\\" in member.name:
                    refuse(member, "leaves the target folder")
                if not (member.isfile() or member.isdir()):
                    refuse(member, "is a link or special file")
                if not parts or parts[0] != top:
                    refuse(member, f"lies outside {top}/")
                if hasattr(tarfile, "data_filter"):
                    try:
                        tarfile.data_filter(member, str(dest))
                    except tarfile.FilterError as exc:
                        refuse(member, f"is unsafe ({_one_line(exc)})")
                path = dest.joinpath(*parts)
                if not path.resolve().is_relative_to(dest_resolved):
                    refuse(member, "leaves the target folder")
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(path, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ConfigError(f"{label}: cannot unpack ({_one_line(exc)}); nothing was changed") from None


# ----------------------------------------------------------------------------- messages and housekeeping


def _failure(spec: Source, root: Path, missing: list[File], exc: _DownloadFailed) -> str:
    what = "no connection" if exc.offline else "download failed"
    return f"fetch {spec.name}: {what} ({'; '.join(exc.reasons)}); {manual_hint(spec, root, missing)}"


def manual_hint(spec: Source, root: Path, missing: Optional[list[File]] = None) -> str:
    """One line telling a user without internet which files to put where."""
    if spec.archive is not None:
        a = spec.archive
        return (f"to do it by hand, download {' or '.join(a.urls)} (SHA-256 {a.digest.split(':', 1)[1]}) and unpack "
                f"it into {root} (tar xzf {a.name} -C {root}) so that {root / spec.folder}/ holds "
                f"{', '.join(f.name for f in spec.files)}, then run `ddescent data fetch {spec.name}` to verify them")
    missing = list(missing if missing is not None else spec.files)
    names = ", ".join(f.name for f in missing)
    return (f"to do it by hand, copy {names} from {_url_list(missing)} into {root / spec.folder}/, "
            f"then run `ddescent data fetch {spec.name}` to verify them")


def _url_list(files: list[File]) -> str:
    """'BASE (or BASE2)' when every file sits at BASE/name on each mirror, else every URL."""
    bases = []
    for i in range(max(len(f.urls) for f in files)):
        urls = [f.urls[i] for f in files if i < len(f.urls)]
        heads = {u[: -len(f.name)] for u, f in zip(urls, files) if u.endswith(f.name)}
        if len(urls) == len(files) and len(heads) == 1:
            bases.append(heads.pop())
        else:
            bases.append(" ".join(urls))
    return bases[0] + (f" (or {' or '.join(bases[1:])})" if len(bases) > 1 else "")


def _one_line(x) -> str:
    return " ".join(str(x).split())


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (deepest first) so a failure can take them back."""
    made = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        made.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (it holds what was fetched) or gone
