"""Failures worded for the person using the app. `app.py` shows them as message boxes."""

from __future__ import annotations


class ServiceError(Exception):
    """A failure worded for the person using the app; `title` heads the message box."""

    title = "Something went wrong"


class PhotoError(ServiceError):
    title = "Photo"


class SettingsError(ServiceError):
    title = "Settings"


class ModelUnavailableError(ServiceError):
    title = "No model loaded"


class DemoNotReadyError(ModelUnavailableError):
    """No model yet, said to a visitor: what they can do (come back), not what an operator would."""

    title = "Not ready yet"


class OutOfMemoryError(ServiceError):
    title = "Out of memory"


class GenerationCancelled(ServiceError):
    title = "Cancelled"


class DiskFullError(ServiceError):
    title = "Disk full"


class InternalError(ServiceError):
    """Something unexpected; the message quotes `reference`, which the log has beside the details."""

    title = "Internal error"

    def __init__(self, message: str, reference: str):
        super().__init__(message)
        self.reference = reference
