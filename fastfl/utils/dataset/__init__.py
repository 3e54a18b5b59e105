"""Federated data sets and partitions with FedLab 1.2.1's names: partitioners, samplers, slicing, readers."""

from __future__ import annotations

from fastfl.utils.dataset import functional, partition, sampler, slicing
from fastfl.utils.dataset._common import (
    DatasetFileError,
    OptionalDependencyError,
    PartitionError,
    PartitionTypeError,
)
from fastfl.utils.dataset.fcube import FCUBE, generate_fcube
from fastfl.utils.dataset.libsvm import RCV1, Adult, Covtype, SparseRows, load_libsvm
from fastfl.utils.dataset.partition import (
    AdultPartitioner,
    BasicPartitioner,
    CIFAR10Partitioner,
    CIFAR100Partitioner,
    CovtypePartitioner,
    DataPartitioner,
    FCUBEPartitioner,
    FMNISTPartitioner,
    MNISTPartitioner,
    RCV1Partitioner,
    SVHNPartitioner,
    VisionPartitioner,
)
from fastfl.utils.dataset.plot import plot_partition
from fastfl.utils.dataset.sampler import DictFileSampler, RawPartitionSampler, SubsetSampler
from fastfl.utils.dataset.slicing import noniid_slicing, random_slicing
from fastfl.utils.dataset.stats import PartitionStats, client_class_counts, partition_stats
from fastfl.utils.dataset.synthetic import SyntheticDataset, generate_synthetic
from fastfl.utils.dataset.vision import load_vision_dataset, read_idx, read_vision_arrays, vision_targets

__all__ = [
    "FCUBE",
    "RCV1",
    "Adult",
    "AdultPartitioner",
    "BasicPartitioner",
    "CIFAR10Partitioner",
    "CIFAR100Partitioner",
    "Covtype",
    "CovtypePartitioner",
    "DataPartitioner",
    "DatasetFileError",
    "DictFileSampler",
    "FCUBEPartitioner",
    "FMNISTPartitioner",
    "MNISTPartitioner",
    "OptionalDependencyError",
    "PartitionError",
    "PartitionStats",
    "PartitionTypeError",
    "RCV1Partitioner",
    "RawPartitionSampler",
    "SVHNPartitioner",
    "SparseRows",
    "SubsetSampler",
    "SyntheticDataset",
    "VisionPartitioner",
    "client_class_counts",
    "functional",
    "generate_fcube",
    "generate_synthetic",
    "load_libsvm",
    "load_vision_dataset",
    "noniid_slicing",
    "partition",
    "partition_stats",
    "plot_partition",
    "random_slicing",
    "read_idx",
    "read_vision_arrays",
    "sampler",
    "slicing",
    "vision_targets",
]
