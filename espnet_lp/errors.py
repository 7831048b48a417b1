"""The base of errors that describe bad user input (CLIs print them as one clear line)."""


class EspnetLPError(RuntimeError):
    """Bad input or configuration, described well enough to fix without a traceback."""


class InputError(EspnetLPError):
    """A missing, unreadable or malformed input file, or an option that does not fit it."""


class ModelConfigError(EspnetLPError, ValueError):
    """A model option (``model_conf``, ``lp_decoder_conf``, ...) that cannot be built; the
    message names the key and the valid choices."""
