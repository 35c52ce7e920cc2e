"""Datasets for the two profiles.

Embedded profile: Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; 60 000 train / 10 000
test grayscale 28x28 images, 10 classes). Located, in order:

1. the directory named by ``FASHION_MNIST_DIR`` (the four IDX files, gzipped or not); when
   the variable is set it is the only place looked at, and a directory without the files
   is an error rather than a silent fall-back to another copy;
2. Debian's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
3. torchvision's copy under ``ADV2_DATA_DIR`` (downloaded there if ``download=True``).

The IDX files are checked on reading (header shape against payload, gzip integrity, as many
labels as images); problems raise the one-line errors of :mod:`adv2lib.errors`.

ImageNet profile: an ImageNet-val ``ImageFolder`` directory (``IMAGENET_VAL_DIR``) or
torchvision's Imagenette; images resized to 256 and centre-cropped to 224, labels mapped to
ImageNet-1k class indices.

Images are always float tensors in [0, 1]; normalisation lives inside the models.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import paths
from .errors import ConfigError, CorruptDataError, DataError, DatasetNotFoundError, one_line

__all__ = [
    "FASHION_MNIST_CLASSES", "IMAGENETTE_WNID_TO_INDEX", "TensorImageDataset", "ImageNetFolder",
    "fashion_mnist", "imagenette", "load_test_set", "locate_fashion_mnist", "read_idx", "load_image_rgb",
    "imagenet_transform", "DataError", "DatasetNotFoundError", "CorruptDataError",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


_APT_INSTALL = "sudo apt-get install dataset-fashion-mnist"
_DATA_FETCH = "python -m adv2lib data fetch"


def _check_split(split: str) -> None:
    if split not in _IDX_FILES:
        raise ConfigError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")


def _expected_files(split: str) -> str:
    images_stem, labels_stem = _IDX_FILES[split]
    return f"{images_stem}[.gz] and {labels_stem}[.gz]"


def _torchvision_raw_dir() -> Path:
    return paths.data_dir() / "FashionMNIST" / "raw"


def _same_dir(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _idx_remedy(path: Path) -> str:
    """What to do about a damaged IDX file, depending on which copy it belongs to."""
    parent = path.parent
    if _same_dir(parent, paths.fashion_mnist_env_dir()):
        return f"restore the file in FASHION_MNIST_DIR ({parent}) from an intact copy of Fashion-MNIST"
    if _same_dir(parent, paths.DEBIAN_FASHION_MNIST):
        return "reinstall the Debian package: sudo apt-get install --reinstall dataset-fashion-mnist"
    if _same_dir(parent, _torchvision_raw_dir()):
        return f"delete {path} and download it again: {_DATA_FETCH}"
    return "replace it with an intact copy"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST container format), gzipped or not.

    The header's shape is checked against the number of bytes that follow it, so a
    truncated download or a damaged gzip stream raises :class:`CorruptDataError` naming
    the file and what to do, instead of a reshape error from numpy.
    """
    path = Path(path)

    def corrupt(what: str) -> CorruptDataError:
        return CorruptDataError(f"corrupt IDX file {path}: {what}; {_idx_remedy(path)}")

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except EOFError as err:
        raise corrupt(f"the gzip stream ends early, the file is truncated ({err})") from err
    except (gzip.BadGzipFile, zlib.error) as err:
        raise corrupt(f"it is not a valid gzip file ({err})") from err
    if len(data) < 4:
        raise corrupt(f"{len(data)} bytes, too short for the 4-byte IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise corrupt(f"magic number 0x{data[:4].hex()} is not that of an unsigned-byte IDX file (0x000008NN)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise corrupt(f"{len(data)} bytes, too short for a {ndim}-dimensional IDX header ({header} bytes)")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        dims = "x".join(map(str, shape))
        kind = "truncated" if payload < expected else "trailing bytes"
        raise corrupt(f"the header announces {dims} = {expected} bytes of data but {payload} follow ({kind})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _find_split(directory: Path, split: str) -> tuple[Path, Path] | None:
    images_stem, labels_stem = _IDX_FILES[split]
    images, labels = _find_idx(directory, images_stem), _find_idx(directory, labels_stem)
    return (images, labels) if images is not None and labels is not None else None


def _idx_dirs() -> list[tuple[str, Path]]:
    dirs = []
    env = paths.fashion_mnist_env_dir()
    if env is not None:
        dirs.append(("FASHION_MNIST_DIR", env))
    dirs.append(("Debian package dataset-fashion-mnist", paths.DEBIAN_FASHION_MNIST))
    dirs.append(("torchvision copy", _torchvision_raw_dir()))
    return dirs


def _locate_in_env_dir(directory: Path, split: str) -> tuple[Path, Path]:
    """The split's files in ``FASHION_MNIST_DIR``; a setting that does not hold them is an error."""
    found = _find_split(directory, split)
    if found is not None:
        return found
    if not directory.exists():
        why = "the directory does not exist"
    elif not directory.is_dir():
        why = "it is not a directory"
    else:
        names = sorted(os.listdir(directory))
        missing = [f"{stem}[.gz]" for stem in _IDX_FILES[split] if _find_idx(directory, stem) is None]
        if not names:
            why = "the directory is empty"
        else:
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            why = (f"{missing[0]} is missing" if len(missing) == 1 else "neither is there") + f"; it holds {shown}"
        # A common slip: pointing at the parent of the directory that holds the files.
        for sub in [directory / "FashionMNIST" / "raw"] + sorted(p for p in directory.iterdir() if p.is_dir()):
            if _find_split(sub, split) is not None:
                why += f"; the files are in {sub}, did you mean FASHION_MNIST_DIR={sub}?"
                break
    raise DatasetNotFoundError(
        f"FASHION_MNIST_DIR={directory} does not hold the Fashion-MNIST {split} files "
        f"{_expected_files(split)} ({why}); point FASHION_MNIST_DIR at the directory holding the four "
        "Fashion-MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, gzipped or not), or unset it to use the Debian package "
        f"({_APT_INSTALL}) or the torchvision copy ({_DATA_FETCH})"
    )


def locate_fashion_mnist(split: str) -> tuple[Path, Path] | None:
    """Return the (images, labels) IDX paths of ``split``, or None if not found locally.

    ``FASHION_MNIST_DIR``, when set (non-empty), is authoritative: if it does not hold the
    split's two files this raises :class:`DatasetNotFoundError` rather than quietly falling
    back to another copy. Unset, the Debian package and then the torchvision copy are tried.
    """
    _check_split(split)
    env = paths.fashion_mnist_env_dir()
    if env is not None:
        return _locate_in_env_dir(env, split)
    for _source, directory in _idx_dirs():
        found = _find_split(directory, split)
        if found is not None:
            return found
    return None


def _not_found_error(split: str) -> DatasetNotFoundError:
    looked = "; ".join(f"{d} ({src})" for src, d in _idx_dirs())
    return DatasetNotFoundError(
        f"Fashion-MNIST ({split}) was not found: looked for {_expected_files(split)} in {looked}; "
        f"install it with `{_APT_INSTALL}` (Debian/Ubuntu) or download it with `{_DATA_FETCH}` "
        "(torchvision, into ADV2_DATA_DIR), or set FASHION_MNIST_DIR to a directory holding the four IDX files"
    )


def _read_split(split: str, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both IDX files of a split, checked to be 28x28 images with one label 0-9 each."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{images_path} holds an array of shape {images.shape}, not Fashion-MNIST images "
                               f"(N, 28, 28); {_idx_remedy(images_path)}")
    if labels.ndim != 1:
        raise CorruptDataError(f"{labels_path} holds an array of shape {labels.shape}, not Fashion-MNIST labels "
                               f"(N,); {_idx_remedy(labels_path)}")
    if len(images) != len(labels):
        raise CorruptDataError(
            f"Fashion-MNIST ({split}): {images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels, so the two files do not belong together; {_idx_remedy(images_path)}"
        )
    if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise CorruptDataError(f"{labels_path} holds label {int(labels.max())}, but Fashion-MNIST labels are 0-9; "
                               f"{_idx_remedy(labels_path)}")
    return images, labels


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
    >>> x, y = test.tensors(range(8)); x.shape   # doctest: +SKIP
    torch.Size([8, 1, 28, 28])
    """
    _check_split(split)
    found = locate_fashion_mnist(split)
    if found is None and download:
        import torchvision

        torchvision.datasets.FashionMNIST(str(paths.data_dir()), train=(split == "train"), download=True)
        found = locate_fashion_mnist(split)
    if found is None:
        raise _not_found_error(split)
    images, labels = (torch.from_numpy(a.copy()) for a in _read_split(split, *found))
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


#: The folder layouts ImageNetFolder understands, said once for every layout error.
_ACCEPTED_LAYOUTS = (
    "accepted layouts: ImageNet-val with one folder per WordNet id (all 1000 wnid folders, n01440764 ...), "
    "Imagenette's wnid folders, or folders named by ImageNet class index 0-999; the official ImageNet-val "
    "tarball is flat and must first be sorted into wnid folders (e.g. with the devkit's ground truth or "
    "the widely used valprep.sh)"
)


def _examples(names, limit: int = 5) -> str:
    names = list(names)
    return ", ".join(repr(n) for n in names[:limit]) + (", ..." if len(names) > limit else "")


def _folder_class_to_imagenet(class_names: list[str], root: str | Path | None = None) -> dict[str, int]:
    """Map ImageFolder class-folder names to ImageNet-1k indices.

    Accepted layouts: the full 1000 wnid folders (sorted order is the ImageNet order),
    folders named by their integer index (``"0"`` .. ``"999"``), or Imagenette wnids.
    Anything else raises :class:`CorruptDataError` (a ``ValueError``) saying which folders
    could not be mapped.
    """
    where = f" of {root}" if root is not None else ""
    if class_names and all(name.isdigit() for name in class_names):
        mapping = {name: int(name) for name in class_names}
        bad = [name for name, v in mapping.items() if not 0 <= v < 1000]
        if bad:
            raise CorruptDataError(f"cannot map the class folders{where} to ImageNet-1k indices: folder names "
                                   f"{_examples(bad)} are numbers outside the class indices 0-999; rename each "
                                   "folder to its ImageNet class index 0-999 or its WordNet id")
        return mapping
    if len(class_names) == 1000 and all(n.startswith("n") for n in class_names):
        return {name: i for i, name in enumerate(sorted(class_names))}
    if class_names and all(name in IMAGENETTE_WNID_TO_INDEX for name in class_names):
        return {name: IMAGENETTE_WNID_TO_INDEX[name] for name in class_names}
    if class_names and all(n.startswith("n") and n[1:].isdigit() for n in class_names):
        unknown = [n for n in class_names if n not in IMAGENETTE_WNID_TO_INDEX]
        why = (f"{len(class_names)} WordNet-id folders are neither all 1000 ImageNet classes (whose sorted order "
               f"gives the index) nor Imagenette's ten (not Imagenette's: {_examples(unknown)}); for a subset "
               "of ImageNet, rename each folder to its ImageNet class index 0-999")
    else:
        odd = [n for n in class_names if not n.isdigit() and n not in IMAGENETTE_WNID_TO_INDEX]
        why = f"{len(class_names)} folders, of which {_examples(odd)} are neither a WordNet id nor a class index"
    raise CorruptDataError(f"cannot map the class folders{where} to ImageNet-1k indices: {why}; {_ACCEPTED_LAYOUTS}")


#: Pillow modes that ``convert("RGB")`` turns into 8-bit RGB without losing range.
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                              "LAB", "HSV"})


def _sixteen_bit_mode(mode: str) -> bool:
    # Pillow opens 16-bit grayscale PNG/TIFF as "I;16" (and its byte-order variants) or, in
    # older versions or other formats, as the 32-bit integer mode "I".
    return mode == "I" or mode.startswith("I;16")


def _to_rgb(image, path) -> "PIL.Image.Image":  # noqa: F821
    from PIL import Image

    mode = image.mode
    if mode in _EIGHT_BIT_MODES:
        return image.convert("RGB")
    if _sixteen_bit_mode(mode):
        values = np.asarray(image)
        if values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
            raise CorruptDataError(
                f"image {path} (Pillow mode {mode!r}) holds values from {int(values.min())} to {int(values.max())}, "
                "outside the 16-bit range 0-65535, so it cannot be read as a grayscale image; convert it to 8-bit RGB"
            )
        # Scale 0..65535 to 0..255: round(v / 257) (never a tie, since v is an integer).
        eight = ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return Image.fromarray(eight).convert("RGB")
    raise CorruptDataError(f"image {path} has Pillow mode {mode!r}, which cannot be converted faithfully to the "
                           "8-bit RGB the models read; convert it to 8-bit RGB (e.g. PNG or JPEG)")


def load_image_rgb(path: str | Path) -> "PIL.Image.Image":  # noqa: F821
    """Open an image file as 8-bit RGB, the loader of :class:`ImageNetFolder`.

    Unlike torchvision's default loader (a bare ``convert("RGB")``, which clips a 16-bit
    grayscale image to white), 16-bit grayscale is rescaled to 8 bits first; a pixel type
    without a faithful 8-bit RGB rendering (floating point, 32-bit integers beyond 16 bits)
    raises :class:`CorruptDataError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as fh:
            image = Image.open(fh)
            image.load()
            return _to_rgb(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:   # truncated, empty or not an image
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        raise CorruptDataError(f"image {path} cannot be read ({type(err).__name__}: {err}); replace it with an "
                               "intact copy or remove it from the folder") from err


def _check_image_folder_root(root: Path | None) -> None:
    """Raise a one-line :class:`DatasetNotFoundError` unless ``root`` has class sub-folders."""
    setting = ("set IMAGENET_VAL_DIR (or pass the directory) to an ImageNet-val directory with one folder per "
               "WordNet id, or use Imagenette: adv2lib.data.imagenette(download=True) with internet access")
    if root is None:
        raise DatasetNotFoundError(f"no ImageNet images: IMAGENET_VAL_DIR is not set; {setting}")
    if not root.exists():
        raise DatasetNotFoundError(f"ImageNet images not found at {root}: the directory does not exist; {setting}")
    if not root.is_dir():
        raise DatasetNotFoundError(f"ImageNet images not found at {root}: it is a file, not a directory; {setting}")
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    if any(e.is_dir() for e in entries):
        return
    if not entries:
        raise DatasetNotFoundError(f"ImageNet image directory {root} is empty; {setting}; {_ACCEPTED_LAYOUTS}")
    from torchvision.datasets.folder import IMG_EXTENSIONS

    images = [e.name for e in entries if e.name.lower().endswith(IMG_EXTENSIONS)]
    found = (f"holds {len(images)} images directly (e.g. {_examples(images, 3)})" if images
             else f"holds only files that are not images (e.g. {_examples([e.name for e in entries], 3)})")
    raise DatasetNotFoundError(f"ImageNet image directory {root} has no class sub-folders: it {found}; "
                               f"ImageNetFolder needs one sub-folder per class; {_ACCEPTED_LAYOUTS}")


class ImageNetFolder(Dataset):
    """An ImageNet-val or Imagenette ``ImageFolder`` with ImageNet-1k labels, 224x224 in [0, 1].

    Images are read by :func:`load_image_rgb` (16-bit grayscale rescaled, not clipped).
    """

    def __init__(self, root: str | Path | None = None, size: int = 224):
        from torchvision.datasets import ImageFolder

        root = Path(root).expanduser() if root is not None else paths.imagenet_val_dir()
        _check_image_folder_root(root)
        try:
            self.folder = ImageFolder(str(root), transform=imagenet_transform(size), loader=load_image_rgb)
        except FileNotFoundError as err:  # e.g. class folders without a single image
            detail = one_line(str(err))
            detail = detail if len(detail) <= 300 else detail[:300] + "..."
            raise DatasetNotFoundError(f"ImageNet image directory {root} cannot be read as class folders of "
                                       f"images: {detail}; {_ACCEPTED_LAYOUTS}") from err
        mapping = _folder_class_to_imagenet(self.folder.classes, root)
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
    raise ConfigError(f"unknown profile {profile!r}; expected 'embedded' or 'imagenet'")
