"""What every drawing function shares: how it says "cannot draw this", and how it saves.

A drawing function takes run frames (reports.runs.Runs), returns the tidy DataFrame it plotted
(tests check those numbers, not pixels) and raises Skip with a reason a user can act on when the
runs cannot support its figure; `figures` prints that reason instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

FORMATS = ("png", "svg", "pdf")


class Skip(Exception):
    """The runs cannot support this figure or table; the message says what is missing."""


def save_figure(fig, stem: Path, formats=("png",)) -> list[Path]:
    """Write `fig` as stem.<fmt> for each format and close it."""
    written = []
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        out = Path(stem).with_name(Path(stem).name + f".{fmt}")
        fig.savefig(out, dpi=150 if fmt == "png" else None, bbox_inches="tight")
        written.append(out)
    plt.close(fig)
    return written


def save_data(frame: pd.DataFrame, stem: Path) -> Path:
    """The numbers behind a figure, beside it (stem.csv), so a reader can quote or re-plot them."""
    out = Path(stem).with_name(Path(stem).name + ".csv")
    frame.to_csv(out, index=False)
    return out
