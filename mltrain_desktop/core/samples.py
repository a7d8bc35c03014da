"""Where the shipped sample training script and its sample data live.

``SAMPLE_DIR`` is the folder of the seed's sample (``tf_mnist.py`` + ``utils.py``), ready to be
a run's source directory; ``sample_data_dir()`` is a folder holding the four MNIST-format files
(``train-images-idx3-ubyte.gz`` ...) to register as a file dataset: the full Fashion-MNIST from
Debian's ``dataset-fashion-mnist`` package when it is installed, else the small subset shipped
in ``resources/data/fashion-mnist-small`` (2000 train / 500 test examples).

Resources are found next to the package in a source checkout (``<repo>/resources``) and under
``sys._MEIPASS/resources`` in a PyInstaller bundle. Standard library only.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = [
    "RESOURCES_DIR",
    "DISTRIBUTED_SAMPLE_DIR",
    "SAMPLE_DIR",
    "SAMPLE_ENTRY_SCRIPT",
    "SUBSET_DIR",
    "FULL_DATA_DIR",
    "MNIST_FILES",
    "has_mnist_files",
    "sample_data_dir",
]

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidate = Path(bundle) / "resources"
        if candidate.is_dir():
            return candidate
    # <repo>/mltrain_desktop/core/samples.py -> <repo>/resources
    return Path(__file__).resolve().parent.parent.parent / "resources"


RESOURCES_DIR: Path = _resources_dir()
SAMPLE_DIR: Path = RESOURCES_DIR / "samples" / "tf-mnist"
DISTRIBUTED_SAMPLE_DIR: Path = RESOURCES_DIR / "samples" / "tf-mnist-distributed"
SAMPLE_ENTRY_SCRIPT = "tf_mnist.py"
SUBSET_DIR: Path = RESOURCES_DIR / "data" / "fashion-mnist-small"
FULL_DATA_DIR: Path = Path("/usr/share/datasets/fashion-mnist")


def has_mnist_files(folder: Path) -> bool:
    """True when folder directly holds all four MNIST-format files."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in MNIST_FILES)


def sample_data_dir(full: bool | None = None) -> Path:
    """The folder of sample data for the sample script.

    ``full=True``: the full Fashion-MNIST in /usr/share/datasets/fashion-mnist (whether or not it
    is installed); ``full=False``: the shipped subset; ``full=None``: the full set when all four
    files are installed there, else the subset.
    """
    if full is True or (full is None and has_mnist_files(FULL_DATA_DIR)):
        return FULL_DATA_DIR
    return SUBSET_DIR
