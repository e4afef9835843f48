"""The claims table, built from hand-made study folders whose verdicts are known."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from reports.claims import CLAIMS, claims_table, write_claims
from tests.reports.conftest import row
from tests.reports.conftest import write_run as write_rows

SEEDS = (0, 1, 2)
NOISE = (0.0, 0.004, -0.004)  # per seed, shared by the strategies of a seed (they pair)


def write_run(root, strategy, seed, rows, cycles, **config):
    """A finished run: its config's `cycles` is its last row's cycle."""
    d = write_rows(root, strategy, seed, rows, **config)
    saved = yaml.safe_load((d / "config.yaml").read_text())
    (d / "config.yaml").write_text(yaml.safe_dump({**saved, "cycles": cycles}))
    return d


def curve(ap0, ap1, seed, pseudo0=None, pseudo1=None):
    """Two cycles, 1 h then 1.5 h; AP50 moved by the seed's noise."""
    n = NOISE[seed]
    return [row(0, 1.0, ap0 + n, pseudo=pseudo0), row(1, 1.5, ap1 + n, pseudo=pseudo1)]


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for s in SEEDS:
        # Fig. 1: 0.60 well localised, 0.95 classified right -> both hold
        write_run(root / "fig1-digits", "ssod", s, [row(0, 1.0, 0.5, pseudo=(
            100, 0.60 + NOISE[s], 0.3, 0.1, 0.95, 0.6, 0.2))], cycles=0)
        # Table 2: DeLR-random 0.05 above SSOD after cycle 0 -> holds
        write_run(root / "table2-digits", "delr-random", s, curve(0.5, 0.65, s), cycles=1)
        write_run(root / "table2-digits", "ssod", s, curve(0.5, 0.60, s), cycles=1)
        # Fig. 4a: DeLR above MI-AOD but below random -> does not hold (random is the best)
        for strategy, ap1 in (("delr", 0.60), ("miaod", 0.55), ("random", 0.65)):
            write_run(root / "fig4a-digits", strategy, s, curve(0.5, ap1, s), cycles=1)
        # Table 1: tau 0.9 worst -> holds
        for tau, ap1 in ((0.5, 0.62), (0.7, 0.63), (0.9, 0.55)):
            write_run(root / "table1-digits", "delr", s, curve(0.5, ap1, s),
                      experiment=f"tau={tau}", tau=tau, cycles=1)
        # Table 3: Delta_pos 0.2 within 0.002 of 0 -> holds; Table 4 has no runs -> missing
        for delta, ap1 in ((0.0, 0.600), (0.1, 0.601), (0.2, 0.598)):
            write_run(root / "table3-digits", "delr", s, curve(0.5, ap1, s),
                      experiment=f"delta_pos={delta}", delta_pos=delta, cycles=1)
        # Fig. 6c: DeLR's IoU > 0.7 share 0.5 -> 0.45 -> does not hold
        write_run(root / "fig6-digits", "delr", s, curve(
            0.5, 0.6, s, (100, 0.5, 0.4, 0.1, 0.9, 0.5, 0.1),
            (100, 0.45 + NOISE[s], 0.4, 0.15, 0.9, 0.5, 0.1)), cycles=1)
    # Table 5: two seeds only -> unclear whatever the means
    for s in SEEDS[:2]:
        for backend in ("frcnn", "retinanet"):
            for strategy, ap1 in (("delr", 0.6), ("miaod", 0.5)):
                write_run(root / "table5-digits", strategy, s, curve(0.5, ap1, s),
                          experiment=f"backend={backend}", backend=backend, cycles=1)
    return root


def test_every_claim_gets_the_verdict_its_runs_give(results):
    table = claims_table(results).set_index("claim")
    assert list(table.index) == [c.key for c in CLAIMS]
    verdicts = table["verdict"].to_dict()
    assert verdicts == {
        "fig1-localised": "holds", "fig1-classified": "holds", "table2": "holds",
        "fig4a": "does not hold", "table1": "holds", "table3": "holds", "table4": "missing",
        "fig6c": "does not hold", "table5": "unclear", "fig5a": "missing"}
    assert table.loc["fig1-localised", "harness"] == pytest.approx(0.60)
    # AUBC over 1 -> 1.5 h is the mean of the two points: DeLR-random - SSOD = 0.05 / 2
    assert table.loc["table2", "harness"] == pytest.approx(0.025)
    assert table.loc["table2", "n_seeds"] == 3
    assert "best other, random" in table.loc["fig4a", "detail"]
    assert table.loc["table1", "harness"] == pytest.approx((0.55 - 0.63) / 2)
    assert table.loc["table3", "harness"] == pytest.approx(-0.002)
    assert "retinanet" in table.loc["table5", "detail"]
    assert table.loc["table5", "n_seeds"] == 2
    # a claim without runs says which folder it looked in, and guesses nothing
    assert "table4-digits" in table.loc["table4", "detail"]
    assert pd.isna(table.loc["table4", "harness"])
    assert table.loc["table4", "command"] == "python -m harness reproduce table4"


def test_the_table_is_written_with_its_label(results, tmp_path):
    out = tmp_path / "claims"
    write_claims(results, out, label="quick: 2 seeds")
    csv = pd.read_csv(out / "claims.csv")
    assert set(csv["mode"]) == {"quick: 2 seeds"} and len(csv) == len(CLAIMS)
    assert "(quick: 2 seeds)" in (out / "claims.md").read_text()
    page = (out / "report.html").read_text()
    assert "quick: 2 seeds" in page and "does not hold" in page


def test_fig5a_compares_hours_to_the_target_every_run_reaches(tmp_path):
    root = tmp_path / "results"
    for s in SEEDS:
        for strategy, aps in (("delr", (0.5, 0.6, 0.7)), ("soft-switch", (0.5, 0.55, 0.65)),
                              ("hard-switch", (0.5, 0.5, 0.66))):
            write_run(root / "fig5a-digits", strategy, s,
                      [row(k, 1.0 + 0.5 * k, ap) for k, ap in enumerate(aps)], cycles=2)
    fig5a = claims_table(root).set_index("claim").loc["fig5a"]
    # the target is 0.65 (the best every run reaches): DeLR at 1.75 h, the soft switch at 2 h,
    # the hard switch at 1.5 + 0.5 * 0.15 / 0.16 h, the faster of the two
    assert fig5a["verdict"] == "holds"
    assert fig5a["harness"] == pytest.approx(1.75 - (1.5 + 0.5 * 0.15 / 0.16))
    assert "hard-switch" in fig5a["detail"]
