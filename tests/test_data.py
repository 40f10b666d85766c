"""The loader accepts the official schema and turns every bad input into a clear one-line error."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from replication.errors import DataError
from replication.training import data as data_module
from replication.training.data import DatasetInfo, load_dataset, locate, registry

PAPER_SETS = {"binarized_mnist", "adult", "connect4", "dna", "mushrooms", "nips", "ocr_letters", "rcv1", "web"}


def write_npz(path: Path, dim: int = 6, rows=(20, 8, 8), dtype=np.uint8, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {f"{s}_data": rng.integers(0, 2, size=(n, dim)).astype(dtype) for s, n in zip(("train", "valid", "test"), rows)}
    arrays.update(inputsize=np.int32(dim), **{f"{s}_length": np.int32(n) for s, n in zip(("train", "valid", "test"), rows)})
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def error_of(target) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(target, download=False) if not callable(target) else target()
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


def test_registry_lists_the_papers_nine_sets_with_their_sizes():
    reg = registry()
    assert set(reg) == PAPER_SETS
    assert reg["binarized_mnist"].dim == 784 and reg["binarized_mnist"].splits == (50000, 10000, 10000)
    assert reg["dna"].splits == (1400, 600, 1186) and reg["ocr_letters"].dim == 128


def test_custom_npz_loads_any_numeric_dtype(tmp_path):
    for dtype in (np.uint8, np.float32, np.float64, np.int64, np.bool_):
        ds = load_dataset(write_npz(tmp_path / f"d_{np.dtype(dtype).name}.npz", dtype=dtype))
        assert ds.dim == 6 and ds.train.dtype.is_floating_point and ds.train.shape == (20, 6)
        assert ds.fingerprint()["sizes"] == {"train": 20, "valid": 8, "test": 8}


def test_named_set_is_found_in_made_data_dir_then_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    local = write_npz(tmp_path / "data" / "dna.npz", dim=180)
    monkeypatch.delenv("MADE_DATA_DIR", raising=False)
    assert locate("dna") == Path("data/dna.npz")
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(local, other / "dna.npz")
    monkeypatch.setenv("MADE_DATA_DIR", str(other))
    assert locate("dna") == other / "dna.npz"


def test_missing_named_set_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MADE_DATA_DIR", str(tmp_path / "nowhere"))
    message = error_of("dna")
    assert "nowhere" in message and "MADE_DATA_DIR" in message


def test_missing_file_path(tmp_path):
    assert "does not exist" in error_of(str(tmp_path / "absent.npz"))


def test_unknown_name_lists_the_known_ones():
    message = error_of("mnist_typo")
    assert "binarized_mnist" in message


@pytest.mark.parametrize("content", [b"not a zip at all", b""])
def test_a_file_that_is_not_an_npz_is_named_as_such(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    message = error_of(str(path))
    assert "is not an .npz file" in message and "allow_pickle" not in message


def test_truncated_file(tmp_path):
    good = write_npz(tmp_path / "good.npz", rows=(500, 50, 50))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    assert "corrupt or truncated" in error_of(str(cut))


def test_missing_key(tmp_path):
    assert "valid_data" in error_of(str(write_npz(tmp_path / "m.npz", valid_data=None)))


def test_wrong_dimensionality(tmp_path):
    assert "2-D" in error_of(str(write_npz(tmp_path / "a.npz", test_data=np.zeros(6))))
    assert "disagree" in error_of(str(write_npz(tmp_path / "b.npz", test_data=np.zeros((8, 5)))))
    assert "inputsize" in error_of(str(write_npz(tmp_path / "c.npz", inputsize=np.int32(7))))


def test_registered_name_with_wrong_dimension(tmp_path, monkeypatch):
    monkeypatch.setenv("MADE_DATA_DIR", str(tmp_path))
    write_npz(tmp_path / "dna.npz", dim=10)
    assert "180" in error_of("dna")


def test_non_binary_values(tmp_path):
    values = np.full((8, 6), 0.5, dtype=np.float32)
    assert "not 0 or 1" in error_of(str(write_npz(tmp_path / "n.npz", test_data=values)))


def test_nan(tmp_path):
    values = np.zeros((8, 6), dtype=np.float32)
    values[2, 3] = np.nan
    assert "NaN" in error_of(str(write_npz(tmp_path / "nan.npz", valid_data=values)))


def test_wrong_length_key(tmp_path):
    assert "train_length" in error_of(str(write_npz(tmp_path / "l.npz", train_length=np.int32(3))))


def fake_info(monkeypatch, tmp_path, sha256, url="http://127.0.0.1:9/dna.npz"):
    info = DatasetInfo("dna", 6, (20, 8, 8), url, sha256)
    monkeypatch.setattr(data_module, "registry", lambda: {"dna": info})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MADE_DATA_DIR", raising=False)
    return info


@pytest.fixture
def upstream(tmp_path):
    """A real HTTP server on the loopback interface serving ``upstream/dna.npz`` (the download goes through pooch)."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    source = write_npz(folder / "dna.npz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield source, f"http://127.0.0.1:{server.server_address[1]}/dna.npz"
    server.shutdown()


def test_download_is_verified_and_saved(tmp_path, monkeypatch, upstream):
    source, url = upstream
    fake_info(monkeypatch, tmp_path, data_module.sha256_of(source), url)
    ds = load_dataset("dna")
    assert Path("data/dna.npz").is_file() and ds.dim == 6 and ds.sha256 == data_module.sha256_of(source)


def test_download_with_wrong_checksum_is_rejected(tmp_path, monkeypatch, upstream):
    _, url = upstream
    fake_info(monkeypatch, tmp_path, "0" * 64, url)
    assert "SHA-256" in error_of(lambda: load_dataset("dna"))
    assert not Path("data/dna.npz").exists()


def test_failed_download_explains_how_to_get_the_data(tmp_path, monkeypatch):
    fake_info(monkeypatch, tmp_path, None, "http://127.0.0.1:9/dna.npz")  # nothing listens on port 9
    message = error_of(lambda: load_dataset("dna"))
    assert "download" in message and "MADE_DATA_DIR" in message and "failed" in message
    assert not Path("data/dna.npz").exists()


@pytest.mark.parametrize("name", sorted(n for n, info in registry().items() if info.sha256))
def test_real_data_matches_the_registry(name):
    """The real files (from $MADE_DATA_DIR, or downloaded) have the paper's sizes and checksums."""
    info = registry()[name]
    ds = load_dataset(name)
    assert ds.sha256 == info.sha256
    assert ds.dim == info.dim and tuple(ds.fingerprint()["sizes"].values()) == info.splits
    assert set(ds.train.unique().tolist()) == {0.0, 1.0}
