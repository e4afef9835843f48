"""The harness's own error type.

Every problem a user can fix (bad dataset, bad config, unknown plug-in) raises a subclass of
`HarnessError` whose message says what is wrong and how to fix it. The CLI prints it as one line
and exits non-zero instead of showing a traceback.
"""


class HarnessError(Exception):
    """A problem the user can fix; the message says how."""


class DatasetError(HarnessError):
    """A dataset is missing, malformed or escapes its root."""


class ConfigError(HarnessError):
    """A configuration value or plug-in name is wrong."""


class CapabilityError(HarnessError):
    """A strategy needs a capability the chosen backend does not have."""
