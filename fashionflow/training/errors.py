"""Errors of data preparation and training, worded for the person who ran the command."""

from ..base.errors import DISK_FULL, INPUT, OUTPUT, STOPPED, FashionFlowError


class DataError(FashionFlowError, ValueError):
    """Videos or prepared data that cannot be used (empty folder, data made for another model, ...)."""

    kind = INPUT


class OutputFolderError(FashionFlowError, ValueError):
    """The output folder cannot be written (read-only, a file in the way, another run in it)."""

    kind = OUTPUT


class TrainingStopped(FashionFlowError, RuntimeError):
    """Training stopped on its own (a NaN loss); the message says where and what was kept."""

    kind = STOPPED


class DiskFullError(FashionFlowError, RuntimeError):
    """The disk filled while training wrote something; the message says what was kept."""

    kind = DISK_FULL
    reason = "disk-full"
