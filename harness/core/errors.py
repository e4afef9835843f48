"""The harness's own error and warning types.

Every problem a user can fix (bad dataset, bad config, unknown plug-in) raises a subclass of
`HarnessError` whose message says what is wrong and how to fix it. The CLI prints it as one
paragraph (`error: ...`) and exits non-zero instead of showing a traceback.

Input that is odd but harmless (a box of zero width, which some public datasets contain) is
dropped with a `HarnessWarning` instead; the CLI prints it as `warning: ...`.
"""


class HarnessError(Exception):
    """A problem the user can fix; the message says how."""


class DatasetError(HarnessError):
    """A dataset is missing, malformed or escapes its root."""


class ConfigError(HarnessError):
    """A configuration value or plug-in name is wrong."""


class CapabilityError(HarnessError):
    """A strategy needs a capability the chosen backend does not have."""


class CheckpointError(HarnessError):
    """A weights or checkpoint file is unreadable or not what the harness expects."""


class HarnessWarning(UserWarning):
    """Something in the input was skipped or adjusted; the run goes on."""


class DatasetWarning(HarnessWarning):
    """A dataset reader dropped annotations it cannot use (e.g. boxes of zero size)."""
