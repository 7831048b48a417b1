"""The base of errors that describe bad user input (CLIs print them as one clear line)."""


class EspnetLPError(RuntimeError):
    """Bad input or configuration, described well enough to fix without a traceback."""
