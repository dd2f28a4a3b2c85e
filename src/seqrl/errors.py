"""Errors that name the problem. Every bad input a user can give ends in one of these."""


class SeqRLError(Exception):
    """Base class for seqrl's user-facing errors (the CLI prints these without a traceback)."""


class DatasetError(SeqRLError):
    """A dataset is missing, corrupt, inconsistent or unknown."""


class CheckpointError(SeqRLError):
    """A checkpoint or run directory is missing, corrupt, or does not fit the data."""


class ConfigError(SeqRLError):
    """A configuration value is unknown or out of range."""


class TrainingError(SeqRLError):
    """Training cannot go on (the loss became NaN or infinite); the last checkpoint is intact."""
