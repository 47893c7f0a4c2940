"""Errors that name the file, subject or key at fault."""

from hydra.errors import CompactHydraException


class FairaugError(CompactHydraException):
    """Base class: a problem the user can fix from the message alone, so the entry point prints
    the message without a stack trace (HYDRA_FULL_ERROR=1 shows it)."""


class DataError(FairaugError, ValueError):
    """Bad input data: corrupt file, missing column, unknown value, wrong shape."""


class ConfigError(FairaugError, ValueError):
    """A configuration value that cannot work (unknown name, incompatible choice)."""


class OutputExists(ConfigError):
    """A task refuses to write over an earlier result in its folder; raised before it writes anything."""
