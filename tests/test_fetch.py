"""Dataset downloads against a local HTTP server serving small files in the real formats: verified, atomic,
no-op when present, refused when damaged or unsafe, one line when offline; and the `data fetch|ls` commands."""

import dataclasses
import hashlib
import io
import os
import socket
import tarfile
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from ddescent import ConfigError, fetch_cli
from ddescent.data import cifar10
from ddescent.data import idx as mnist
from ddescent.data import fetch as fx
from fake_data import write_cifar, write_mnist

ARCHIVE = "cifar-10-python.tar.gz"


# ----------------------------------------------------------------------------- a local server that counts requests


class Server:
    def __init__(self):
        self.files, self.lie, self.requests = {}, {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                server.requests.append(path)
                if path not in server.files:
                    self.send_error(404)
                    return
                body = server.files[path]
                self.send_response(200)
                self.send_header("Content-Length", str(server.lie.get(path, len(body))))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path):
        return self.base + path

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def idx_blobs(tmp_path, name, seed=0):
    """The four .gz files as write_mnist writes them, and the arrays they hold."""
    folder = tmp_path / "src" / name
    arrays = write_mnist(folder, seed=seed)
    return arrays, {f.name: (folder / f.name).read_bytes() for f in fx.SOURCES[name].files}


def idx_spec(server, name, blobs, mirrors=("a",)):
    """The real table entry with its URLs and SHA-256 pointed at the served files."""
    files = []
    for f in fx.SOURCES[name].files:
        for m in mirrors:
            server.files.setdefault(f"{m}/{name}/{f.name}", blobs[f.name])
        files.append(dataclasses.replace(f, digest=f"sha256:{sha256(blobs[f.name])}", size=len(blobs[f.name]),
                                         urls=tuple(server.url(f"{m}/{name}/{f.name}") for m in mirrors)))
    return dataclasses.replace(fx.SOURCES[name], files=tuple(files))


def cifar_archive(tmp_path, seed=0, extra=()):
    """cifar-10-python.tar.gz as the official one is laid out (cifar-10-batches-py/ at the top) + extra members."""
    src = tmp_path / f"src{seed}"
    batches = write_cifar(src, seed=seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / cifar10.FOLDER, arcname=cifar10.FOLDER)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    members = {p.name: p.read_bytes() for p in (src / cifar10.FOLDER).iterdir()}
    return batches, buf.getvalue(), members


def cifar_spec(server, archive, members):
    server.files["cifar/" + ARCHIVE] = archive
    spec = fx.SOURCES["cifar10"]
    files = tuple(dataclasses.replace(f, digest=f"md5:{hashlib.md5(members[f.name]).hexdigest()}") for f in spec.files)
    return dataclasses.replace(spec, files=files, archive=dataclasses.replace(
        spec.archive, digest=f"sha256:{sha256(archive)}", size=len(archive), urls=(server.url("cifar/" + ARCHIVE),)))


def mnist_cfg(root, name="mnist"):  # as tests/test_datasets.py
    from omegaconf import OmegaConf
    return OmegaConf.create({"name": name, "root": str(root), "normalize": False, "mean": [0.5], "std": [0.25],
                             "augment": False})


def cifar_cfg(root):
    from omegaconf import OmegaConf
    return OmegaConf.create({"name": "cifar10", "root": str(root), "normalize": False,
                             "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.25], "augment": False})


def tree(root):
    """Every path under root, relative, sorted (dot-files included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def leftovers(root):
    """Temporaries: dot-entries other than the verification cache."""
    return [p for p in tree(root) if any(part.startswith(".") for part in p.split(os.sep)) and p != fx.CACHE_NAME]


# ----------------------------------------------------------------------------- fetch: verify, place, read back


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_fetch_idx_files_are_verified_placed_and_read_back_exactly(tmp_path, server, name):
    arrays, blobs = idx_blobs(tmp_path, name, seed=3)
    root, seen = tmp_path / "data", []
    folder = fx.fetch(name, root, sources=idx_spec(server, name, blobs), progress=lambda *a: seen.append(a))
    assert folder == root / name
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == blobs
    assert leftovers(root) == []
    for f, b in blobs.items():  # each download reported from 0 to its end
        assert (f, 0, len(b)) in seen and (f, len(b), len(b)) in seen
    mnist._read.cache_clear()
    pool = mnist.load(mnist_cfg(root, name))
    np.testing.assert_array_equal(np.rint(pool.x[:, 0] * 255), arrays["x"])
    np.testing.assert_array_equal(pool.y, arrays["y"])
    np.testing.assert_array_equal(np.rint(pool.x_test[:, 0] * 255), arrays["x_test"])
    np.testing.assert_array_equal(pool.y_test, arrays["y_test"])


def test_fetch_cifar_unpacks_the_archive_and_the_reader_reads_it_back(tmp_path, server):
    batches, archive, members = cifar_archive(tmp_path)
    root = tmp_path / "data"
    assert fx.fetch("cifar10", root, sources=cifar_spec(server, archive, members)) == root / cifar10.FOLDER
    assert tree(root) == sorted([fx.CACHE_NAME, cifar10.FOLDER, *(os.path.join(cifar10.FOLDER, m) for m in members)])
    cifar10._read.cache_clear()
    pool = cifar10.load(cifar_cfg(root))
    train = [batches[n] for n in cifar10.TRAIN]
    np.testing.assert_array_equal(pool.x.reshape(len(pool.x), -1) * 255,
                                  np.concatenate([b["data"] for b in train]).astype(np.float32))
    np.testing.assert_array_equal(pool.y, np.concatenate([b["labels"] for b in train]))
    np.testing.assert_array_equal(pool.y_test, batches[cifar10.TEST]["labels"])
    fx.fetch("cifar10", root, sources=cifar_spec(server, archive, members))
    assert server.requests == ["cifar/" + ARCHIVE]  # the second fetch asked for nothing


def test_mirrors_are_tried_in_order(tmp_path, server):
    _, blobs = idx_blobs(tmp_path, "mnist")
    spec = idx_spec(server, "mnist", blobs, mirrors=("a", "b"))
    del server.files["a/mnist/train-labels-idx1-ubyte.gz"]                 # 404 on the first mirror
    server.files["a/mnist/t10k-labels-idx1-ubyte.gz"] = b"not the file"   # wrong bytes on the first mirror
    fx.fetch("mnist", tmp_path / "data", sources=spec)
    assert {p.name: p.read_bytes() for p in (tmp_path / "data" / "mnist").iterdir()} == blobs
    assert sorted(server.requests) == sorted([f"a/mnist/{f}" for f in blobs] + ["b/mnist/train-labels-idx1-ubyte.gz",
                                                                              "b/mnist/t10k-labels-idx1-ubyte.gz"])


# ----------------------------------------------------------------------------- no-op, re-verification, completion


def test_second_fetch_is_a_noop_and_a_changed_file_is_verified_again(tmp_path, server, monkeypatch):
    _, blobs = idx_blobs(tmp_path, "mnist")
    spec, root = idx_spec(server, "mnist", blobs), tmp_path / "data"
    fx.fetch("mnist", root, sources=spec)
    assert len(server.requests) == 4
    hashed = []
    real_hash = fx._hash_file
    monkeypatch.setattr(fx, "_hash_file", lambda path, algo: hashed.append(path.name) or real_hash(path, algo))
    fx.fetch("mnist", root, sources=spec)
    assert len(server.requests) == 4 and hashed == []  # no request, nothing hashed: the cache answered

    changed = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))  # same size, same inode, new mtime
    fx.fetch("mnist", root, sources=spec)
    assert server.requests[4:] == ["a/mnist/t10k-labels-idx1-ubyte.gz"]
    assert changed.read_bytes() == blobs[changed.name]
    assert hashed == [changed.name]


def test_partial_idx_dataset_is_completed_not_duplicated(tmp_path, server):
    _, blobs = idx_blobs(tmp_path, "mnist")
    spec, root = idx_spec(server, "mnist", blobs), tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    good = root / "mnist" / "train-images-idx3-ubyte.gz"
    good.write_bytes(blobs[good.name])
    (root / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(blobs["train-labels-idx1-ubyte.gz"][:-3])  # damaged
    inode = good.stat().st_ino
    fx.fetch("mnist", root, sources=spec)
    assert sorted(server.requests) == sorted(f"a/mnist/{f}" for f in blobs if f != good.name)
    assert good.stat().st_ino == inode
    assert {p.name: p.read_bytes() for p in (root / "mnist").iterdir()} == blobs


def test_files_in_another_layout_the_reader_accepts_are_not_fetched_again(tmp_path, server):
    _, blobs = idx_blobs(tmp_path, "mnist")
    root = tmp_path / "data"
    write_mnist(root / "MNIST" / "raw")  # torchvision's layout, same seed: the same bytes
    assert fx.fetch("mnist", root, sources=idx_spec(server, "mnist", blobs)) == root / "MNIST" / "raw"
    assert server.requests == [] and not (root / "mnist").exists()


def test_partial_cifar_folder_is_completed_not_duplicated(tmp_path, server):
    batches, archive, members = cifar_archive(tmp_path)
    root = tmp_path / "data"
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    kept = ["data_batch_1", "data_batch_2", cifar10.META]
    for name in kept:
        (folder / name).write_bytes(members[name])
    inodes = {name: (folder / name).stat().st_ino for name in kept}
    fx.fetch("cifar10", root, sources=cifar_spec(server, archive, members))
    assert server.requests == ["cifar/" + ARCHIVE]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == members
    assert {name: (folder / name).stat().st_ino for name in kept} == inodes
    assert sorted(p.name for p in root.iterdir()) == sorted([fx.CACHE_NAME, cifar10.FOLDER])
    cifar10._read.cache_clear()
    np.testing.assert_array_equal(cifar10.load(cifar_cfg(root)).y_test, batches[cifar10.TEST]["labels"])


# ----------------------------------------------------------------------------- damaged downloads leave nothing


def flip(b, i=None):
    b = bytearray(b)
    b[len(b) // 2 if i is None else i] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("how", ["flipped", "truncated", "short-read"])
def test_damaged_cifar_archive_is_refused_and_leaves_nothing(tmp_path, server, how):
    _, archive, members = cifar_archive(tmp_path)
    spec = cifar_spec(server, archive, members)
    path = "cifar/" + ARCHIVE
    if how == "flipped":
        server.files[path] = flip(archive)
    elif how == "truncated":  # the mirror holds half a file
        server.files[path] = archive[: len(archive) // 2]
    else:  # the connection breaks off: fewer bytes than the Content-Length promised
        server.files[path], server.lie[path] = archive[: len(archive) // 2], len(archive)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(ConfigError) as err:
        fx.fetch("cifar10", root, sources=spec)
    message = str(err.value)
    assert "\n" not in message and server.url(path) in message
    assert ("SHA-256" in message) if how != "short-read" else ("broke off after" in message)
    assert tree(root) == []


@pytest.mark.parametrize("which", [0, 3])
def test_damaged_idx_file_is_refused_and_only_verified_files_stay(tmp_path, server, which):
    _, blobs = idx_blobs(tmp_path, "mnist")
    spec, root = idx_spec(server, "mnist", blobs), tmp_path / "data"
    bad = spec.files[which].name
    server.files[f"a/mnist/{bad}"] = flip(blobs[bad])
    root.mkdir()
    with pytest.raises(ConfigError, match="SHA-256") as err:
        fx.fetch("mnist", root, sources=spec)
    assert "\n" not in str(err.value) and bad in str(err.value)
    before = [f.name for f in spec.files[:which]]
    assert tree(root) == ([] if not before else sorted([fx.CACHE_NAME, "mnist", *(f"mnist/{f}" for f in before)]))


# ----------------------------------------------------------------------------- offline: one line, what to put where


def test_server_down_is_one_line_naming_the_files_the_folder_and_the_urls(tmp_path, server):
    _, blobs = idx_blobs(tmp_path, "mnist")
    spec = idx_spec(server, "mnist", blobs)
    _, archive, members = cifar_archive(tmp_path)
    cspec = cifar_spec(server, archive, members)
    server.stop()
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(ConfigError) as err:
        fx.fetch("mnist", root, sources=spec)
    message = str(err.value)
    assert "\n" not in message and "no connection" in message
    assert all(f in message for f in blobs) and f"{root / 'mnist'}/" in message and server.url("a/mnist/") in message
    with pytest.raises(ConfigError) as err:
        fx.fetch("cifar10", root, sources=cspec)
    message = str(err.value)
    assert "\n" not in message and "no connection" in message and server.url("cifar/" + ARCHIVE) in message
    assert f"-C {root}" in message and f"{root / cifar10.FOLDER}/" in message and "data_batch_1" in message
    assert tree(root) == []


def test_a_silent_server_times_out_into_the_same_one_line_error(tmp_path, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections in the kernel, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x/"
        spec = dataclasses.replace(fx.SOURCES["mnist"], files=tuple(
            dataclasses.replace(f, urls=(url + f.name,)) for f in fx.SOURCES["mnist"].files))
        monkeypatch.setattr(fx, "TIMEOUT", 0.3)
        with pytest.raises(ConfigError, match="no connection.*timed out") as err:
            fx.fetch("mnist", tmp_path, sources=spec)
        assert "\n" not in str(err.value) and tree(tmp_path) == []
    finally:
        silent.close()


# ----------------------------------------------------------------------------- unsafe archives


def member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def unsafe_member(kind, tmp_path):
    return {"traversal": lambda: member(f"{cifar10.FOLDER}/../../evil.txt"),
            "absolute": lambda: member(str(tmp_path / "evil-absolute.txt")),
            "symlink": lambda: member(f"{cifar10.FOLDER}/link", tarfile.SYMTYPE, linkname="../../evil.txt"),
            "hardlink": lambda: member(f"{cifar10.FOLDER}/hard", tarfile.LNKTYPE, linkname="/etc/passwd"),
            "device": lambda: member(f"{cifar10.FOLDER}/dev", tarfile.CHRTYPE)}[kind]()


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "hardlink", "device"])
@pytest.mark.parametrize("data_filter", [True, False], ids=["with-data_filter", "without-data_filter"])
def test_unsafe_archive_member_is_refused_and_nothing_is_written(tmp_path, server, monkeypatch, kind, data_filter):
    if not data_filter:  # as on Pythons before 3.11.4: the module's own checks alone must refuse
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    # The archive's hash matches its table entry: the unpacker itself must refuse.
    _, archive, members = cifar_archive(tmp_path, extra=[unsafe_member(kind, tmp_path)])
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(ConfigError, match="refused") as err:
        fx.fetch("cifar10", root, sources=cifar_spec(server, archive, members))
    assert "\n" not in str(err.value)
    assert tree(root) == [] and not (tmp_path / "evil.txt").exists() and not (tmp_path / "evil-absolute.txt").exists()


# ----------------------------------------------------------------------------- status, defaults, names


def test_status_reports_present_verified_missing_and_damaged(tmp_path, server, monkeypatch):
    _, blobs = idx_blobs(tmp_path, "mnist")
    _, fblobs = idx_blobs(tmp_path, "fashion_mnist", seed=1)
    _, archive, members = cifar_archive(tmp_path)
    monkeypatch.setitem(fx.SOURCES, "mnist", idx_spec(server, "mnist", blobs))
    monkeypatch.setitem(fx.SOURCES, "fashion_mnist", idx_spec(server, "fashion_mnist", fblobs))
    monkeypatch.setitem(fx.SOURCES, "cifar10", cifar_spec(server, archive, members))
    root = tmp_path / "data"
    assert {d["name"]: d["state"] for d in fx.status(root)} == {n: "missing" for n in fx.SOURCES}
    assert not root.exists()  # status writes nothing
    fx.fetch("mnist", root)
    (root / "fashion_mnist").mkdir()
    (root / "fashion_mnist" / "train-labels-idx1-ubyte.gz").write_bytes(fblobs["train-labels-idx1-ubyte.gz"])
    (root / "fashion_mnist" / "train-images-idx3-ubyte").write_bytes(b"raw IDX, no digest for it")
    report = {d["name"]: d for d in fx.status(root)}
    assert report["mnist"]["state"] == "complete" and sorted(report["mnist"]["verified"]) == sorted(blobs)
    fashion = report["fashion_mnist"]
    assert fashion["state"] == "partial" and fashion["verified"] == ["train-labels-idx1-ubyte.gz"]
    assert sorted(fashion["present"]) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert fashion["files"][0]["state"] == "unverified"
    assert sorted(fashion["missing"]) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(flip(blobs["t10k-images-idx3-ubyte.gz"]))
    report = {d["name"]: d for d in fx.status(root)}
    assert report["mnist"]["state"] == "damaged" and report["mnist"]["damaged"] == ["t10k-images-idx3-ubyte.gz"]
    assert report["cifar10"]["missing"] == [f.name for f in fx.SOURCES["cifar10"].files]


def test_default_root_is_ddescent_data_else_the_data_configs_default(tmp_path, monkeypatch):
    from importlib.resources import files

    from omegaconf import OmegaConf

    monkeypatch.setenv("DDESCENT_DATA", str(tmp_path / "shared"))
    assert fx.default_root() == tmp_path / "shared"
    monkeypatch.delenv("DDESCENT_DATA")
    monkeypatch.chdir(tmp_path)
    for name in ("mnist", "fashion_mnist", "cifar10"):  # the data configs' own `root`, resolved
        root = OmegaConf.load(files("ddescent.conf") / "data" / f"{name}.yaml").root
        assert fx.default_root() == (tmp_path / str(root)).resolve()
    assert fx.default_root("~/x") == (Path.home() / "x").resolve()  # expanded as the readers do


def test_unknown_dataset_is_a_config_error_naming_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="cifar10, mnist, fashion_mnist|mnist, fashion_mnist, cifar10"):
        fx.fetch("imagenet", tmp_path)


# ----------------------------------------------------------------------------- the command line


def test_cli_fetch_then_ls_then_offline_error(tmp_path, server, monkeypatch):
    _, blobs = idx_blobs(tmp_path, "mnist")
    monkeypatch.setitem(fx.SOURCES, "mnist", idx_spec(server, "mnist", blobs))
    root, runner = tmp_path / "data", CliRunner()
    r = runner.invoke(fetch_cli.app, ["fetch", "mnist", "--root", str(root)])
    assert r.exit_code == 0, r.output
    assert sorted(r.stderr.splitlines()) == sorted(f"{f}: {len(b)} bytes downloaded" for f, b in blobs.items())
    assert r.stdout.strip() == f"mnist: downloaded and verified in {root / 'mnist'} (data.root={root})"
    r = runner.invoke(fetch_cli.app, ["fetch", "mnist", "--root", str(root)])
    assert r.exit_code == 0 and "already present and verified" in r.stdout and len(server.requests) == 4

    import typer

    main = typer.Typer()  # mounted as the lead will: `ddescent data ls`
    main.add_typer(fetch_cli.app, name="data")
    r = runner.invoke(main, ["data", "ls", "--root", str(root)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"data root {root}"
    assert any(ln.split()[:3] == ["mnist", "complete", "4/4"] for ln in lines)
    assert any(ln.split()[:3] == ["cifar10", "missing", "0/7"] for ln in lines)

    server.stop()
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    r = runner.invoke(fetch_cli.app, ["fetch", "mnist", "--root", str(tmp_path / "other")])
    assert r.exit_code == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("ddescent: error: fetch mnist: no connection")
    r = runner.invoke(fetch_cli.app, ["fetch", "imagenet"])
    assert r.exit_code == 2 and r.stderr.startswith("ddescent: error: unknown dataset 'imagenet'")


def test_cli_progress_is_a_tqdm_bar_per_file_on_a_terminal(capsys):
    bar = fetch_cli._Bar()
    for name in ("a.gz", "b.gz"):
        for done in (0, 512, 1024):
            bar(name, done, 1024)
    bar.close()
    err = capsys.readouterr().err
    assert "a.gz: 100%" in err and "b.gz: 100%" in err and "1.00k/1.00k" in err


def test_fetch_cifar10_then_train_the_cnn5_preset_for_one_epoch(tmp_path, server, monkeypatch, data_cache):
    """The user's path: `ddescent data fetch cifar10` (here from the local server), then a run of the paper preset
    on what it put there; a corrupted archive exits 2 and leaves the data root empty."""
    from conftest import cli
    from ddescent import cli as ddescent_cli, store

    _, archive, members = cifar_archive(tmp_path)
    root, runner = tmp_path / "data", CliRunner()
    spec = cifar_spec(server, archive, members)
    monkeypatch.setitem(fx.SOURCES, "cifar10", spec)
    server.files["cifar/" + ARCHIVE] = flip(archive)
    r = runner.invoke(ddescent_cli.app, ["data", "fetch", "cifar10", "--root", str(root / "bad")])
    errors = [line for line in r.stderr.splitlines() if line.startswith("ddescent: error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "SHA-256" in errors[0] and tree(root / "bad") == []
    server.files["cifar/" + ARCHIVE] = archive
    r = runner.invoke(ddescent_cli.app, ["data", "fetch", "cifar10", "--root", str(root)])
    assert r.exit_code == 0, r.output
    r = cli("run", "experiment=fig9_9_cifar10_cnn5", "width=1", "epochs=1", "train.batch_size=4", "progress=off",
            "--results", str(tmp_path / "r"), env={"DDESCENT_DATA": str(root)})
    assert r.returncode == 0, r.stderr
    df = store.load(tmp_path / "r")
    assert set(df.status) == {"complete"} and df.epoch.max() == 1 and df.n_train.iloc[0] == 20  # 5 batches of 4
    assert df.model.iloc[0] == "cnn5" and df.dataset.iloc[0] == "cifar10"
