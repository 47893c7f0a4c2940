"""Errors that name the file, subject or key at fault."""


class FairaugError(Exception):
    """Base class: a problem the user can fix from the message alone."""


class DataError(FairaugError, ValueError):
    """Bad input data: corrupt file, missing column, unknown value, wrong shape."""


class ConfigError(FairaugError, ValueError):
    """A configuration value that cannot work (unknown name, incompatible choice)."""
