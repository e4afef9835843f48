"""Progress bars: live on a terminal, a line every 30 s when the output goes to a file."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(iterable=None, enabled: bool = True, **kwargs):
    interactive = sys.stderr.isatty()
    return tqdm(iterable, disable=not enabled, leave=False, dynamic_ncols=True,
                mininterval=0.1 if interactive else 30.0, **kwargs)
