"""Deprecated: moved to harness.core.errors (issue #25); this old path still works and warns."""

import sys
import warnings

from harness.core import errors as _moved

warnings.warn("harness.errors moved to harness.core.errors: import it from there (the old path will "
              "be removed)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # the very module: its objects, and what a test patches on it
