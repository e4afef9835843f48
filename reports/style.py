"""One look per strategy, the same in every figure, and readable printed in grey.

A strategy keeps its colour, marker and line style whichever other strategies share the plot:
the style is fixed by the strategy's place in ORDER (the paper's legend order, DeLR first), not
by what happens to be drawn. Colour alone does not survive a grey-scale printer, so each
strategy also gets its own marker and line style. A strategy not in ORDER (a new plug-in) gets a
style derived from a hash of its name, so it too looks the same in every figure.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import seaborn as sns  # noqa: E402

# the paper's legend order: the proposed method, its ablation, then the baselines
ORDER = ["delr", "delr-random", "ssod", "random", "miaod", "coreset", "ll4al", "cdal",
         "entropy", "soft-switch", "hard-switch", "omni-ec", "omni-point-ec"]
PALETTE = sns.color_palette("colorblind", 10)
MARKERS = "osD^vP*Xhp<>d"
LINESTYLES = ["-", "--", "-.", ":"]
# hatches for bars, so that bars of different series differ without colour
HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "--", "++"]
METRIC_LABELS = {"ap50": "AP50", "ap": "AP50:95", "voc07_ap50": "AP50 (VOC07 11-point)"}


@dataclass(frozen=True)
class LineStyle:
    colour: tuple
    marker: str
    linestyle: str

    def kwargs(self) -> dict:
        return {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle}


def slot(strategy: str) -> int:
    """Fixed position of a strategy: its index in ORDER, else a stable hash past ORDER."""
    base = strategy.split("[", 1)[0]  # "delr[skip_score=0.95]" looks like delr
    if base in ORDER:
        return ORDER.index(base)
    return len(ORDER) + zlib.crc32(base.encode()) % 64


def line_style(strategy: str) -> LineStyle:
    k = slot(strategy)
    # colour and line style cycle with different periods (10, 4): no two of the first 20
    # slots share both
    return LineStyle(PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)],
                     LINESTYLES[(k // len(PALETTE) + k) % len(LINESTYLES)])


def legend_order(names) -> list[str]:
    """Strategies (or line labels) in the paper's legend order, unknown ones after, by name."""
    return sorted(set(names), key=lambda s: (slot(s), s))


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)
