"""The small error hierarchy; the UI edge turns these into friendly messages."""


class MemlaneError(Exception):
    """Base class for every error Memlane raises on purpose."""


class ImportFailed(MemlaneError):
    """An import file could not be read; nothing from it was stored."""


class InvalidInput(MemlaneError):
    """A request named something that does not exist or is malformed; nothing changed."""


class RecordNotFound(InvalidInput):
    """No memory record has the given id."""


class ModelMissing(MemlaneError):
    """A packaged model is not installed or its file is damaged."""


class CaptureUnavailable(MemlaneError):
    """Screen capture cannot run here (no display, Wayland, ...)."""


class Locked(MemlaneError):
    """The memory is locked: vault secrets and screenshots cannot be opened until
    `memlane unlock`; everything else (search, capture) goes on."""
