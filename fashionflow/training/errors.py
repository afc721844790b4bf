"""Errors of data preparation and training, worded for the person who ran the command."""


class DataError(ValueError):
    """Videos or prepared data that cannot be used (empty folder, data made for another model, ...)."""


class OutputFolderError(ValueError):
    """The output folder cannot be written (read-only, a file in the way, another run in it)."""


class TrainingStopped(RuntimeError):
    """Training stopped on its own (a NaN loss); the message says where and what was kept."""
