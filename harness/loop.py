"""Deprecated: moved to harness.campaign.loop (issue #25); this old path still works and warns."""

import sys
import warnings

from harness.campaign import loop as _moved

warnings.warn("harness.loop moved to harness.campaign.loop: import it from there (the old path will "
              "be removed)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # the very module: its objects, and what a test patches on it
