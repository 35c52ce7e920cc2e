"""Datasets for the two profiles.

Embedded profile: Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; 60 000 train / 10 000
test grayscale 28x28 images, 10 classes). Located, in order:

1. the directory named by ``FASHION_MNIST_DIR`` (the four IDX files, gzipped or not);
2. Debian's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
3. torchvision's copy under ``ADV2_DATA_DIR`` (downloaded there if ``download=True``).

ImageNet profile: an ImageNet-val ``ImageFolder`` directory (``IMAGENET_VAL_DIR``) or
torchvision's Imagenette; images resized to 256 and centre-cropped to 224, labels mapped to
ImageNet-1k class indices.

Images are always float tensors in [0, 1]; normalisation lives inside the models.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import paths

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset cannot be found locally nor downloaded."""


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST container format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _idx_dirs() -> list[tuple[str, Path]]:
    dirs = []
    env = paths.fashion_mnist_env_dir()
    if env is not None:
        dirs.append(("FASHION_MNIST_DIR", env))
    dirs.append(("Debian package dataset-fashion-mnist", paths.DEBIAN_FASHION_MNIST))
    dirs.append(("torchvision copy", paths.data_dir() / "FashionMNIST" / "raw"))
    return dirs


def locate_fashion_mnist(split: str) -> tuple[Path, Path] | None:
    """Return the (images, labels) IDX paths of ``split``, or None if not found locally."""
    images_stem, labels_stem = _IDX_FILES[split]
    for _source, directory in _idx_dirs():
        images, labels = _find_idx(directory, images_stem), _find_idx(directory, labels_stem)
        if images is not None and labels is not None:
            return images, labels
    return None


@dataclass
class TensorImageDataset(Dataset):
    """Images stored as uint8 ``(N, C, H, W)``; items are ``(float image in [0,1], label)``."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index].float().div_(255.0), int(self.labels[index])

    def tensors(self, indices=None) -> tuple[torch.Tensor, torch.Tensor]:
        """All (or the selected) images as one float batch in [0, 1], and their labels."""
        idx = slice(None) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx].float().div(255.0), self.labels[idx].clone()


def fashion_mnist(split: str = "test", download: bool = False) -> TensorImageDataset:
    """Fashion-MNIST ``split`` ("train" or "test") as a :class:`TensorImageDataset`.

    >>> test = fashion_mnist("test")          # doctest: +SKIP
    >>> x, y = test.tensors(range(8)); x.shape
    torch.Size([8, 1, 28, 28])
    """
    if split not in _IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    found = locate_fashion_mnist(split)
    if found is None and download:
        import torchvision

        torchvision.datasets.FashionMNIST(str(paths.data_dir()), train=(split == "train"), download=True)
        found = locate_fashion_mnist(split)
    if found is None:
        looked = "\n".join(f"  - {src}: {d}" for src, d in _idx_dirs())
        raise DatasetNotFoundError(
            f"Fashion-MNIST ({split}) was not found. Looked in:\n{looked}\n"
            "Get it in one of two ways:\n"
            "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
            "  2. with internet access: python -m adv2lib data fetch   "
            "(torchvision download into ADV2_DATA_DIR)\n"
            "or point FASHION_MNIST_DIR at a directory holding the four IDX files."
        )
    images, labels = (torch.from_numpy(read_idx(p).copy()) for p in found)
    return TensorImageDataset(images.unsqueeze(1), labels.long(), FASHION_MNIST_CLASSES)


# --------------------------------------------------------------------------- ImageNet

#: Imagenette's ten WordNet ids and their ImageNet-1k indices (fast.ai Imagenette;
#: indices are the positions of the wnids in the sorted ILSVRC-2012 synset list).
IMAGENETTE_WNID_TO_INDEX = {
    "n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491,
    "n03028079": 497, "n03394916": 566, "n03417042": 569, "n03425413": 571,
    "n03445777": 574, "n03888605": 701,
}


def imagenet_transform(size: int = 224, resize: int = 256):
    """Resize(256) + CenterCrop(224) + ToTensor: images in [0, 1], no normalisation."""
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size), transforms.ToTensor()])


def _folder_class_to_imagenet(class_names: list[str]) -> dict[str, int]:
    """Map ImageFolder class-folder names to ImageNet-1k indices.

    Accepted layouts: the full 1000 wnid folders (sorted order is the ImageNet order),
    folders named by their integer index (``"0"`` .. ``"999"``), or Imagenette wnids.
    """
    if all(name.isdigit() for name in class_names):
        mapping = {name: int(name) for name in class_names}
    elif len(class_names) == 1000 and all(n.startswith("n") for n in class_names):
        mapping = {name: i for i, name in enumerate(sorted(class_names))}
    elif all(name in IMAGENETTE_WNID_TO_INDEX for name in class_names):
        mapping = {name: IMAGENETTE_WNID_TO_INDEX[name] for name in class_names}
    else:
        raise ValueError(
            "cannot map these class folders to ImageNet-1k indices: "
            f"{class_names[:5]}... Use the full 1000-wnid ImageNet-val layout, Imagenette, "
            "or name each folder by its ImageNet class index."
        )
    if any(not 0 <= v < 1000 for v in mapping.values()):
        raise ValueError("ImageNet class indices must lie in [0, 1000)")
    return mapping


class ImageNetFolder(Dataset):
    """An ImageNet-val or Imagenette ``ImageFolder`` with ImageNet-1k labels, 224x224 in [0, 1]."""

    def __init__(self, root: str | Path | None = None, size: int = 224):
        from torchvision.datasets import ImageFolder

        root = Path(root) if root is not None else paths.imagenet_val_dir()
        if root is None or not root.is_dir():
            raise DatasetNotFoundError(
                f"ImageNet images not found at {root!s}. Set IMAGENET_VAL_DIR to an ImageNet-val "
                "directory in ImageFolder layout (one folder per wnid), or use "
                "adv2lib.data.imagenette(download=True) with internet access."
            )
        self.folder = ImageFolder(str(root), transform=imagenet_transform(size))
        mapping = _folder_class_to_imagenet(self.folder.classes)
        self.target_map = [mapping[c] for c in self.folder.classes]
        self.classes = tuple(self.folder.classes)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index):
        image, folder_label = self.folder[index]
        return image, self.target_map[folder_label]

    def tensors(self, indices=None) -> tuple[torch.Tensor, torch.Tensor]:
        indices = range(len(self)) if indices is None else indices
        items = [self[int(i)] for i in indices]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.long)


def imagenette(split: str = "val", download: bool = False, size: int = 224) -> ImageNetFolder:
    """torchvision's Imagenette (full size), mapped to ImageNet-1k labels."""
    root = paths.data_dir() / "imagenette2" / split
    if download and not root.is_dir():
        import torchvision

        torchvision.datasets.Imagenette(str(paths.data_dir()), split=split, size="full", download=True)
    return ImageNetFolder(root, size=size)


def load_test_set(profile: str = "embedded", **kwargs):
    """The test set matching ``load_victim(name, profile)``.

    ``embedded``: Fashion-MNIST test. ``imagenet``: ``ImageNetFolder(IMAGENET_VAL_DIR)``
    (``root=`` overrides), or Imagenette with ``source="imagenette"``.
    """
    if profile == "embedded":
        return fashion_mnist("test", **kwargs)
    if profile == "imagenet":
        if kwargs.pop("source", "folder") == "imagenette":
            return imagenette(**kwargs)
        return ImageNetFolder(**kwargs)
    raise ValueError(f"unknown profile {profile!r}; expected 'embedded' or 'imagenet'")
