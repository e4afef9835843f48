"""Deprecated: moved to harness.backends.pretrain (issue #25); this old path still works and warns."""

import sys
import warnings

from harness.backends import pretrain as _moved

warnings.warn("harness.pretrain moved to harness.backends.pretrain: import it from there (the old "
              "path will be removed)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # the very module: its objects, and what a test patches on it
