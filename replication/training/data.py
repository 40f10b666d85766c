"""The paper's binary data sets: registry, lookup, verified download and a strict loader.

A data set is an ``.npz`` in the official MADE schema: ``train_data``, ``valid_data``,
``test_data`` (rows are examples, values 0/1; any numeric dtype) and optionally ``inputsize``
and ``*_length``.  Names are looked up in ``$MADE_DATA_DIR``, then ``./data/``, then downloaded
from the official upstream into ``./data/``; any path to such an ``.npz`` is a custom data set.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tomllib
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, first_line

SPLITS = ("train", "valid", "test")
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class DatasetInfo:
    """What the paper says about a data set, and where to get it."""

    name: str
    dim: int
    splits: tuple[int, int, int]
    url: str
    sha256: str | None = None
    image_shape: tuple[int, int] | None = None
    test_class_sizes: tuple[int, ...] | None = None  # a test split sorted by class: the size of each class's block
    optional: bool = False  # not shipped with the project's data: its experiments are skipped where it cannot be fetched


@dataclass
class BinaryDataset:
    """Three splits of binary vectors as float32 tensors, plus where they came from."""

    name: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    source: str
    sha256: str
    image_shape: tuple[int, int] | None = None
    extra: dict = field(default_factory=dict)
    registered: bool = False  # loaded by its registered name (not from a path)

    @property
    def dim(self) -> int:
        return self.train.shape[1]

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def subset(self, n: int) -> BinaryDataset:
        """The first ``n`` rows of each split (for smoke tests)."""
        return BinaryDataset(
            self.name, self.train[:n], self.valid[:n], self.test[:n], self.source, self.sha256, self.image_shape,
            registered=self.registered,
        )  # fmt: skip

    def fingerprint(self) -> dict:
        """Provenance to store with results: name, SHA-256 of the file, shape; the file's path only for a data set
        given by path (a registered one is found by name, so no machine's path is stored)."""
        sizes = {s: int(self.split(s).shape[0]) for s in SPLITS}
        where = {} if self.registered else {"source": self.source}
        return {"name": self.name, **where, "sha256": self.sha256, "dim": self.dim, "sizes": sizes}


@cache
def registry() -> dict[str, DatasetInfo]:
    """The paper's nine data sets, read from ``datasets.toml``."""
    text = resources.files(__package__).joinpath("datasets.toml").read_text()
    table = tomllib.loads(text)
    return {
        name: DatasetInfo(
            name=name,
            dim=entry["dim"],
            splits=tuple(entry["splits"]),
            url=entry["url"],
            sha256=entry.get("sha256"),
            image_shape=tuple(entry["image_shape"]) if "image_shape" in entry else None,
            test_class_sizes=tuple(entry["test_class_sizes"]) if "test_class_sizes" in entry else None,
            optional=entry.get("optional", False),
        )
        for name, entry in table.items()
    }


def search_dirs() -> list[Path]:
    """Where named data sets are looked for, in order."""
    dirs = [Path(os.environ["MADE_DATA_DIR"])] if os.environ.get("MADE_DATA_DIR") else []
    return dirs + [Path("data")]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(name: str, download: bool = True) -> Path:
    """Path of a named data set, downloading it into ``./data/`` when not found locally."""
    info = registry().get(name)
    if info is None:
        known = ", ".join(sorted(registry()))
        raise DataError(f"unknown data set {name!r}: use one of {known}, or a path to an .npz file")
    candidates = [d / f"{name}.npz" for d in search_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    if not download:
        raise DataError(f"data set {name!r} not found (looked in {looked}); set MADE_DATA_DIR to its folder")
    return download_dataset(info, Path("data") / f"{name}.npz", looked)


def fetch(url: str, sha256: str | None, dest: Path) -> Path:
    """Download ``url`` to ``dest`` with pooch: a timeout, a progress bar in a terminal, the SHA-256 checked when
    known, and the file moved into place only when complete."""
    import pooch

    pooch.get_logger().setLevel("WARNING")  # download_dataset says what is fetched
    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=DOWNLOAD_TIMEOUT_S)
    known = f"sha256:{sha256}" if sha256 else None
    return Path(pooch.retrieve(url, known_hash=known, fname=dest.name, path=dest.parent, downloader=downloader))


def download_dataset(info: DatasetInfo, dest: Path, looked: str) -> Path:
    """Download ``info.url`` to ``dest``, verifying its SHA-256 when known; a one-line DataError when it fails."""
    print(f"downloading {info.name} from {info.url} ...", file=sys.stderr, flush=True)
    try:
        return fetch(info.url, info.sha256, dest)
    except ValueError as exc:  # pooch: the SHA-256 does not match (the file is removed)
        raise DataError(f"download of {info.name!r} failed its SHA-256 check ({exc}); try again later") from None
    except OSError as exc:  # no network, timeout, HTTP error (requests' errors are OSErrors)
        reason = first_line(exc, 200)
        raise DataError(
            f"data set {info.name!r} not found (looked in {looked}) and download from {info.url} failed ({reason}); "
            f"download it by hand into ./data/ or set MADE_DATA_DIR to a folder holding {info.name}.npz"
        ) from None


def is_local(name: str) -> bool:
    """Whether a registered data set is already on this machine (no download attempted)."""
    try:
        locate(name, download=False)
    except DataError:
        return False
    return True


def load_dataset(name_or_path: str | os.PathLike, download: bool = True) -> BinaryDataset:
    """Load a registered data set by name, or any ``.npz`` in the official schema by path.

    >>> dna = load_dataset("dna")  # found in $MADE_DATA_DIR, else ./data/, else downloaded and checked
    >>> dna.dim, [len(dna.split(s)) for s in ("train", "valid", "test")]
    (180, [1400, 600, 1186])
    """
    text = str(name_or_path)
    is_path = text.endswith(".npz") or os.sep in text
    info = None if is_path else registry().get(text)
    path = Path(text) if is_path else locate(text, download)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file; give the path of the data file itself")
    if is_path and not path.is_file():
        raise DataError(f"data file {path} does not exist; give a path to an .npz with train_data/valid_data/test_data")
    name = path.stem if info is None else info.name
    arrays = read_npz(path)

    splits = {s: validate_split(arrays, s, path) for s in SPLITS}
    dims = {s: a.shape[1] for s, a in splits.items()}
    if len(set(dims.values())) != 1:
        raise DataError(f"{path}: splits disagree on dimensionality {dims}; every split needs the same columns")
    dim = dims["train"]
    inputsize = scalar(arrays, "inputsize", path)
    if inputsize is not None and inputsize != dim:
        raise DataError(f"{path}: inputsize says {inputsize} but the data have {dim} columns")
    if info is not None and dim != info.dim:
        raise DataError(f"{path}: {name} should have {info.dim} dimensions, found {dim}; the file is not {name}")
    digest = sha256_of(path)
    if info is not None and info.sha256 and digest != info.sha256:
        raise DataError(
            f"{path} is not the registered {name} (SHA-256 {digest[:12]}..., expected {info.sha256[:12]}...); put the "
            f"original file there, or give this file's path (--dataset {path}) to use it as a data set of its own"
        )
    extra = {k: arrays[k] for k in arrays if k.endswith("_labels")}
    if info is not None and info.test_class_sizes and "test_labels" not in extra:
        extra["test_labels"] = np.repeat(np.arange(len(info.test_class_sizes)), info.test_class_sizes)
    tensors = {s: torch.from_numpy(a.astype(np.float32)) for s, a in splits.items()}
    return BinaryDataset(
        name, **tensors, source=str(path), sha256=digest,
        image_shape=info.image_shape if info else None, extra=extra, registered=info is not None,
    )  # fmt: skip


LOAD_BYTES_PER_VALUE = 4 + 3 + 1  # beyond the stored array: its float32 tensor, the checks' boolean masks, a margin
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
WANTED = {f"{split}_{kind}" for split in SPLITS for kind in ("data", "length", "labels")} | {"inputsize"}


class NpzArrays(dict):
    """The schema's arrays of an ``.npz`` file, and the names of every array the file holds (``in_file``)."""

    def __init__(self, arrays: dict[str, np.ndarray], in_file: list[str]) -> None:
        super().__init__(arrays)
        self.in_file = in_file


def read_npz(path: Path) -> NpzArrays:
    """Read the schema's arrays of an ``.npz``. Every member is checked before anything is allocated: not a zip,
    encrypted or unsupported members, members that are not arrays, and declared sizes beyond memory are one-line
    DataErrors naming the file (never numpy's advice to allow pickles, never a memory error)."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file; give the path of the data file itself")
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                started_as_zip = f.read(4) == b"PK\x03\x04"
            if started_as_zip:
                raise DataError(f"{path} is corrupt or truncated (a zip archive without its end); delete it and get it again")
            raise DataError(f"{path} is not an .npz file (not a zip archive of .npy arrays); check the file")
        with zipfile.ZipFile(path) as archive:
            members = {Path(info.filename).stem: info for info in archive.infolist() if info.filename.endswith(".npy")}
            wanted = {key: info for key, info in members.items() if key in WANTED}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # headers written by Python 2 trigger numpy's harmless warning
                check_members(path, archive, wanted)
                with np.load(path, allow_pickle=False) as npz:
                    return NpzArrays({key: npz[key] for key in wanted}, in_file=sorted(members))
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        reason = first_line(exc)
        raise DataError(f"{path} is corrupt or truncated ({type(exc).__name__}: {reason}); delete it and get it again") from None


def check_members(path: Path, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> None:
    """Refuse encrypted or unsupported members, members that are not plain numeric arrays, and sizes beyond memory,
    reading only each member's header."""
    from .device import memory_words, usable_bytes

    total = 0
    for key, info in members.items():
        if info.flag_bits & 0x1:
            raise DataError(f"{path}: member {key!r} is encrypted; store the arrays unencrypted (numpy.savez)")
        if info.compress_type not in ZIP_METHODS:
            raise DataError(f"{path}: member {key!r} uses an unsupported compression (method {info.compress_type})")
        with archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
            except (ValueError, EOFError) as exc:
                raise DataError(f"{path}: member {key!r} is not a numpy array ({str(exc).splitlines()[0][:120]})") from None
        if dtype.hasobject:
            raise DataError(f"{path}: member {key!r} holds Python objects, not numbers; store numeric arrays")
        elements = int(np.prod(shape, dtype=np.float64))
        total += max(elements * dtype.itemsize, info.file_size) + elements * LOAD_BYTES_PER_VALUE
    cpu = torch.device("cpu")
    if total > usable_bytes(cpu):
        raise DataError(
            f"{path}: loading its arrays needs about {total / 2**30:.1f} GiB (the data as stored, their float32 "
            f"copies and the checks' masks), but only {memory_words(cpu)}; the file is not a data set of this "
            "size, or needs a larger machine"
        )


def scalar(arrays: dict[str, np.ndarray], key: str, path: Path) -> int | None:
    """An integer field of the schema (``inputsize``, ``*_length``): a single whole number, or a one-line DataError."""
    if key not in arrays:
        return None
    value = np.asarray(arrays[key])
    if value.size != 1 or not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
        raise DataError(f"{path}: {key} must be a single whole number, got shape {value.shape} of {value.dtype}")
    number = value.reshape(()).item()
    if not float(number).is_integer() or number < 0:
        raise DataError(f"{path}: {key} must be a single whole number, got {number!r}")
    return int(number)


def validate_split(arrays: dict[str, np.ndarray], split: str, path: Path) -> np.ndarray:
    """Check one split: present, 2-D, numeric, finite, binary, and consistent with its length key."""
    key = f"{split}_data"
    if key not in arrays:
        found = ", ".join(getattr(arrays, "in_file", sorted(arrays))) or "no arrays"
        raise DataError(f"{path} has no {key!r} (it holds: {found}); the schema needs train_data, valid_data, test_data")
    data = arrays[key]
    if data.ndim != 2:
        raise DataError(f"{path}: {key} must be 2-D (examples x dimensions), got shape {data.shape}")
    if data.shape[0] == 0:
        raise DataError(f"{path}: {key} has no rows; every split needs at least one example")
    real = np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating) or data.dtype == np.bool_
    if not real:
        raise DataError(f"{path}: {key} must hold real numbers (0 or 1), got dtype {data.dtype}")
    if np.issubdtype(data.dtype, np.floating) and np.isnan(data).any():
        raise DataError(f"{path}: {key} contains NaN in {int(np.isnan(data).sum())} entries; values must be 0 or 1")
    if data.size and (data.min() < 0 or data.max() > 1 or not (np.issubdtype(data.dtype, np.integer) or data.dtype == np.bool_)):
        bad = (data != 0) & (data != 1)  # one byte a value, and only for data that may hold other values
        if bad.any():
            example = data[bad].flat[0]
            raise DataError(f"{path}: {key} has {int(bad.sum())} values that are not 0 or 1 (e.g. {example}); binarize it first")
    length = scalar(arrays, f"{split}_length", path)
    if length is not None and length != data.shape[0]:
        raise DataError(f"{path}: {split}_length says {length} rows but {key} has {data.shape[0]}")
    return data
