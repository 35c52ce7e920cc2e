"""Data errors: every missing, misplaced or damaged dataset gives one line naming the file or
directory and the remedy. All inputs are tiny files generated in ``tmp_path``."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from adv2lib import data, errors, paths

TEST_FILES = "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


# ------------------------------------------------------------------ Fashion-MNIST helpers
def idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def write_file(path, payload: bytes, gz: bool):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_split(directory, n_images=3, n_labels=None, gz=True, split="test"):
    """A tiny but well-formed Fashion-MNIST split: ``n_images`` 28x28 images and their labels."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = "t10k" if split == "test" else "train"
    images = np.arange(n_images * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(n_images, 28, 28)
    labels = np.arange(n_images if n_labels is None else n_labels, dtype=np.uint8) % 10
    return (write_file(directory / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz),
            write_file(directory / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz))


@pytest.fixture
def no_system_copies(monkeypatch, tmp_path):
    """Neither the Debian package nor a torchvision copy is visible; FASHION_MNIST_DIR unset."""
    monkeypatch.setattr(paths, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("ADV2_DATA_DIR", str(tmp_path / "adv2data"))
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)


def test_data_uses_the_library_error_classes():
    assert data.DatasetNotFoundError is errors.DatasetNotFoundError
    assert data.CorruptDataError is errors.CorruptDataError and data.DataError is errors.DataError
    from adv2lib.data import DatasetNotFoundError

    assert issubclass(DatasetNotFoundError, FileNotFoundError) and issubclass(DatasetNotFoundError, errors.Adv2Error)


# ------------------------------------------------------------------ FASHION_MNIST_DIR is authoritative
@pytest.mark.parametrize("case", ["missing", "empty", "wrong", "file"])
def test_env_dir_without_the_files_is_an_error(monkeypatch, tmp_path, no_system_copies, case):
    target = tmp_path / "fm"
    if case == "empty":
        target.mkdir()
    elif case == "wrong":
        target.mkdir()
        (target / "notes.txt").write_text("x")
        write_file(target / "t10k-images-idx3-ubyte", b"", gz=True)   # the labels are missing
    elif case == "file":
        target.write_text("x")
    # The Debian copy exists but must not be used behind the user's back.
    write_split(tmp_path / "no-debian")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(target))
    for call in (lambda: data.locate_fashion_mnist("test"), lambda: data.fashion_mnist("test")):
        with pytest.raises(data.DatasetNotFoundError) as err:
            call()
        msg = one_line(err.value)
        assert f"FASHION_MNIST_DIR={target}" in msg and TEST_FILES in msg
        assert "unset it" in msg and "sudo apt-get install dataset-fashion-mnist" in msg
        assert "python -m adv2lib data fetch" in msg
    reason = {"missing": "does not exist", "empty": "is empty", "file": "not a directory",
              "wrong": "(t10k-labels-idx1-ubyte[.gz] is missing; it holds notes.txt, t10k-images-idx3-ubyte.gz)"}[case]
    assert reason in msg


def test_env_dir_pointing_at_the_parent_suggests_the_subdirectory(monkeypatch, tmp_path, no_system_copies):
    write_split(tmp_path / "fm" / "FashionMNIST" / "raw")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.locate_fashion_mnist("test")
    assert f"did you mean FASHION_MNIST_DIR={tmp_path / 'fm' / 'FashionMNIST' / 'raw'}?" in one_line(err.value)


@pytest.mark.parametrize("gz", [True, False])
def test_env_dir_with_a_tiny_split_loads(monkeypatch, tmp_path, no_system_copies, gz):
    write_split(tmp_path / "fm", n_images=3, gz=gz)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    ds = data.fashion_mnist("test")
    x, y = ds.tensors()
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [0, 1, 2]


def test_empty_env_value_counts_as_unset(monkeypatch, tmp_path, no_system_copies):
    monkeypatch.setenv("FASHION_MNIST_DIR", "")
    assert data.locate_fashion_mnist("test") is None


def test_nothing_found_anywhere(tmp_path, no_system_copies):
    assert data.locate_fashion_mnist("test") is None      # the Makefile's `l('test') and l('train')`
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.fashion_mnist("test")
    msg = one_line(err.value)
    assert TEST_FILES in msg
    assert str(tmp_path / "no-debian") in msg and str(tmp_path / "adv2data" / "FashionMNIST" / "raw") in msg
    assert "`sudo apt-get install dataset-fashion-mnist`" in msg and "`python -m adv2lib data fetch`" in msg


def test_bad_split_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="split"):
        data.locate_fashion_mnist("validation")
    with pytest.raises(ValueError, match="split"):
        data.fashion_mnist("validation")


# ------------------------------------------------------------------ damaged IDX files
def _truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("damage,expected", [
    ("truncated raw", "truncated"),
    ("truncated gzip", "the gzip stream ends early"),
    ("not gzip", "not a valid gzip file"),
    ("trailing bytes", "trailing bytes"),
    ("bad magic", "is not that of an unsigned-byte IDX file"),
    ("empty", "too short for the 4-byte IDX header"),
])
def test_damaged_idx_names_the_file(monkeypatch, tmp_path, no_system_copies, damage, expected):
    images, _ = write_split(tmp_path / "fm", gz=damage in ("truncated gzip", "not gzip"))
    if damage == "truncated raw":
        _truncate(images, 1000)
    elif damage == "truncated gzip":
        _truncate(images, len(images.read_bytes()) // 2)
    elif damage == "not gzip":
        images.write_bytes(b"this is not gzip data")
    elif damage == "trailing bytes":
        images.write_bytes(images.read_bytes() + b"\0\0")
    elif damage == "bad magic":
        images.write_bytes(b"\x1f\x00" + images.read_bytes()[2:])
    elif damage == "empty":
        images.write_bytes(b"")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    with pytest.raises(data.CorruptDataError) as err:
        data.fashion_mnist("test")
    msg = one_line(err.value)
    assert isinstance(err.value, ValueError)
    assert str(images) in msg and expected in msg
    assert "restore the file in FASHION_MNIST_DIR" in msg


def test_truncated_idx_header_shape_is_reported(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(idx_bytes(np.zeros((2, 3, 4), np.uint8))[:-5])
    with pytest.raises(data.CorruptDataError) as err:
        data.read_idx(path)
    assert one_line(err.value) == (f"corrupt IDX file {path}: the header announces 2x3x4 = 24 bytes of data but 19 "
                                   "follow (truncated); replace it with an intact copy")


def test_damaged_debian_copy_says_reinstall(monkeypatch, tmp_path, no_system_copies):
    images, _ = write_split(tmp_path / "no-debian")
    _truncate(images, len(images.read_bytes()) // 2)
    with pytest.raises(data.CorruptDataError) as err:
        data.fashion_mnist("test")
    msg = one_line(err.value)
    assert str(images) in msg and msg.endswith("sudo apt-get install --reinstall dataset-fashion-mnist")


def test_damaged_torchvision_copy_says_delete_and_fetch(tmp_path, no_system_copies):
    images, _ = write_split(tmp_path / "adv2data" / "FashionMNIST" / "raw", gz=False)
    _truncate(images, 100)
    with pytest.raises(data.CorruptDataError) as err:
        data.fashion_mnist("test")
    assert one_line(err.value).endswith(f"delete {images} and download it again: python -m adv2lib data fetch")


def test_label_count_mismatch_names_both_files(monkeypatch, tmp_path, no_system_copies):
    images, labels = write_split(tmp_path / "fm", n_images=3, n_labels=2)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    with pytest.raises(data.CorruptDataError) as err:
        data.fashion_mnist("test")
    assert one_line(err.value) == (
        f"Fashion-MNIST (test): {images} holds 3 images but {labels} holds 2 labels, so the two files do not "
        f"belong together; restore the file in FASHION_MNIST_DIR ({tmp_path / 'fm'}) from an intact copy of "
        "Fashion-MNIST")


# ------------------------------------------------------------------ ImageNet folders: pixel types
def gradient16() -> np.ndarray:
    """Every 16-bit value once: a 256x256 gradient from 0 to 65535."""
    return np.arange(65536, dtype=np.uint16).reshape(256, 256)


def test_16bit_png_is_rescaled_not_saturated(tmp_path):
    from PIL import Image
    from torchvision.datasets import ImageFolder

    (tmp_path / "0").mkdir()
    png = tmp_path / "0" / "g.png"
    Image.fromarray(gradient16()).save(png)
    assert Image.open(png).mode in ("I;16", "I;16B", "I;16L", "I")
    # A 256x256 image passes Resize(256) unchanged; the crop keeps the centre 224x224.
    x, label = data.ImageNetFolder(tmp_path, size=224)[0]
    assert label == 0 and x.shape == (3, 224, 224)
    expected = torch.from_numpy(np.round(gradient16()[16:240, 16:240] / 257) / 255).float()
    for channel in x:
        torch.testing.assert_close(channel, expected, atol=1 / 255 + 1e-6, rtol=0)
    assert (x == 1.0).float().mean() < 0.01
    # torchvision's own loader clips the same file to white almost everywhere.
    clipped, _ = ImageFolder(str(tmp_path), transform=data.imagenet_transform(224))[0]
    assert (clipped == 1.0).float().mean() > 0.9


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_16bit_modes_map_to_round_v_over_257(tmp_path, mode):
    from PIL import Image

    values = [0, 128, 129, 257, 32768, 65535, 1000, 40000]
    if mode == "I":
        image = Image.fromarray(np.array(values, dtype=np.int32).reshape(2, 4))
        path = tmp_path / "i.tif"
    else:
        image = Image.new(mode, (4, 2))
        image.putdata(values)
        path = tmp_path / "i.png"
    assert image.mode == mode
    if mode == "I":
        image.save(path)
        rgb = data.load_image_rgb(path)
    else:
        rgb = data._to_rgb(image, path)
    assert rgb.mode == "RGB"
    got = np.asarray(rgb)[..., 0].ravel().tolist()
    assert got == [round(v / 257) for v in values] == [0, 0, 1, 1, 128, 255, 4, 156]


def test_8bit_images_are_unchanged(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    assert np.array_equal(np.asarray(data.load_image_rgb(tmp_path / "c.png")), rgb)
    assert np.array_equal(np.asarray(data.load_image_rgb(tmp_path / "g.png")), np.repeat(rgb[..., :1], 3, axis=2))


def test_small_images_go_through_the_transform(tmp_path):
    from PIL import Image

    (tmp_path / "7").mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "7" / "a.png")
    x, y = data.ImageNetFolder(tmp_path, size=8).tensors()
    assert x.shape == (1, 3, 8, 8) and y.tolist() == [7]
    torch.testing.assert_close(x, torch.full_like(x, 200 / 255))


@pytest.mark.parametrize("kind,expected", [
    ("float", "has Pillow mode 'F', which cannot be converted faithfully to the 8-bit RGB the models read; "
              "convert it to 8-bit RGB (e.g. PNG or JPEG)"),
    ("int32", "(Pillow mode 'I') holds values from 0 to 70000, outside the 16-bit range 0-65535, so it cannot "
              "be read as a grayscale image; convert it to 8-bit RGB"),
])
def test_unconvertible_pixel_types_name_the_file(tmp_path, kind, expected):
    from PIL import Image

    (tmp_path / "3").mkdir()
    path = tmp_path / "3" / "x.tif"
    arr = np.linspace(0, 1, 64, dtype=np.float32) if kind == "float" else np.linspace(0, 70000, 64).astype(np.int32)
    Image.fromarray(arr.reshape(8, 8)).save(path)
    ds = data.ImageNetFolder(tmp_path, size=8)
    with pytest.raises(data.CorruptDataError) as err:
        ds[0]
    assert one_line(err.value) == f"image {path} {expected}"


# ------------------------------------------------------------------ ImageNet folders: layout
def test_flat_folder_names_the_accepted_layouts(tmp_path):
    from PIL import Image

    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"ILSVRC2012_val_0000000{i + 1}.JPEG")
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.ImageNetFolder(tmp_path)
    msg = one_line(err.value)
    assert isinstance(err.value, errors.DataError)
    assert msg.startswith(f"ImageNet image directory {tmp_path} has no class sub-folders: it holds 2 images "
                          "directly (e.g. 'ILSVRC2012_val_00000001.JPEG', 'ILSVRC2012_val_00000002.JPEG')")
    for part in ("one folder per WordNet id", "Imagenette's wnid folders", "class index 0-999",
                 "tarball is flat", "valprep.sh"):
        assert part in msg


def test_empty_missing_and_unset_roots_name_imagenet_val_dir(monkeypatch, tmp_path):
    cases = {tmp_path: f"ImageNet image directory {tmp_path} is empty",
             tmp_path / "missing": f"ImageNet images not found at {tmp_path / 'missing'}: the directory does not exist"}
    for root, start in cases.items():
        with pytest.raises(data.DatasetNotFoundError) as err:
            data.ImageNetFolder(root)
        msg = one_line(err.value)
        assert msg.startswith(start) and "IMAGENET_VAL_DIR" in msg
    monkeypatch.delenv("IMAGENET_VAL_DIR", raising=False)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.ImageNetFolder()
    assert one_line(err.value).startswith("no ImageNet images: IMAGENET_VAL_DIR is not set; set IMAGENET_VAL_DIR")


def test_class_folder_without_images(tmp_path):
    (tmp_path / "n01440764").mkdir()
    (tmp_path / "n01440764" / "readme.txt").write_text("x")
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.ImageNetFolder(tmp_path)
    msg = one_line(err.value)
    assert str(tmp_path) in msg and "Found no valid file for the classes n01440764" in msg


@pytest.mark.parametrize("folders,expected", [
    (["cat", "dog"], "2 folders, of which 'cat', 'dog' are neither a WordNet id nor a class index"),
    (["n01440764", "n01443537"], "2 WordNet-id folders are neither all 1000 ImageNet classes (whose sorted "
                                 "order gives the index) nor Imagenette's ten (not Imagenette's: 'n01443537')"),
    (["5", "1000"], "class folders of {root} to ImageNet-1k indices: folder names '1000' are numbers outside"),
])
def test_unmappable_class_folders_are_a_data_error(tmp_path, folders, expected):
    from PIL import Image

    for name in folders:
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "a.png")
    with pytest.raises(data.CorruptDataError) as err:
        data.ImageNetFolder(tmp_path, size=8)
    assert isinstance(err.value, errors.DataError) and isinstance(err.value, ValueError)
    assert expected.format(root=tmp_path) in one_line(err.value)


def test_unknown_profile_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="unknown profile"):
        data.load_test_set("mobile")


def test_truncated_image_in_a_folder_names_the_file(tmp_path):
    import numpy as np
    from PIL import Image

    from adv2lib.data import ImageNetFolder
    from adv2lib.errors import CorruptDataError

    folder = tmp_path / "val" / "3"
    folder.mkdir(parents=True)
    path = folder / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    dataset = ImageNetFolder(tmp_path / "val", size=8)
    with pytest.raises(CorruptDataError, match="cut.png") as err:
        dataset[0]
    assert "\n" not in str(err.value)
