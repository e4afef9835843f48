"""Budget accounting: the paper's conversion, no overspend, carry-over, other units."""

from __future__ import annotations

import numpy as np
import pytest

from harness.campaign.budget import affordable_prefix, cycle_budget, query_costs
from harness.campaign.config import resolve
from harness.core.errors import ConfigError
from harness.core.queries import Queries, QueryKind
from oracles.base import Answers


def test_paper_conversion_of_a_pool_share_to_hours():
    cfg = resolve(None, cycle_budget="2.5%")
    seconds = cycle_budget(cfg, pool_images=16_511, pool_boxes=0, full_image_s=102.6)
    assert seconds / 3600 == pytest.approx(11.76, abs=0.01)  # the paper's "about 11.8 h"
    assert cycle_budget(resolve(None, cycle_budget="11.8h"), 1, 0, 102.6) == pytest.approx(11.8 * 3600)
    assert cycle_budget(resolve(None, cycle_budget="10"), 1, 0, 102.6) == pytest.approx(1026)


def test_other_units():
    cfg = resolve(None, cycle_budget="10%", budget_unit="images")
    assert cycle_budget(cfg, 200, 900, 102.6) == pytest.approx(20)
    cfg = resolve(None, cycle_budget="10%", budget_unit="boxes")
    assert cycle_budget(cfg, 200, 900, 102.6) == pytest.approx(90)
    with pytest.raises(ConfigError, match="hours"):
        cycle_budget(resolve(None, cycle_budget="2h", budget_unit="images"), 200, 900, 102.6)


def test_prefix_never_overspends_and_stops_at_the_first_query_that_does_not_fit():
    cost = np.array([1.6, 36.6, 1.6, 1.6, 100.0, 1.6])
    assert affordable_prefix(cost, 40.0) == 3  # 1.6 + 36.6 + 1.6 = 39.8
    assert affordable_prefix(cost, 39.8) == 3  # exactly the budget is allowed
    assert affordable_prefix(cost, 1.0) == 0
    assert affordable_prefix(cost, 1e9) == 6
    for allowance in np.linspace(0, 200, 57):
        n = affordable_prefix(cost, allowance)
        assert cost[:n].sum() <= allowance + 1e-9
        assert n == len(cost) or cost[: n + 1].sum() > allowance


def _answers(action_query, action_kind, drawn_query=()):
    a = np.asarray(action_query, np.int64)
    z = np.zeros(0)
    return Answers(z, z, np.zeros((0, 4)), z, z, np.asarray(drawn_query, np.int64),
                   np.zeros((len(drawn_query), 4)), np.zeros(len(drawn_query)),
                   np.zeros((len(drawn_query), 2)), a, np.asarray(action_kind, object),
                   np.zeros(len(a), np.int8), np.zeros(len(a), np.float32))


def test_query_costs_in_each_unit():
    q = Queries.boxes_of(QueryKind.VERIFY_BOX, [0, 0, 1], [0, 1, 2], np.zeros((3, 4)), [0, 0, 0])
    a = _answers([0, 1, 1, 1, 2], ["verify_box", "verify_box", "draw_box", "verify_class", "verify_box"])
    seconds = np.array([1.6, 1.6, 35, 2.7, 1.6])
    np.testing.assert_allclose(query_costs(q, a, seconds, "seconds", np.zeros(2, bool)),
                               [1.6, 39.3, 1.6])
    # images: only the first question on an image never touched before costs one
    np.testing.assert_allclose(query_costs(q, a, seconds, "images", np.array([False, True])),
                               [1, 0, 0])
    np.testing.assert_allclose(query_costs(q, a, seconds, "boxes", np.zeros(2, bool)), [1, 1, 1])
    full = Queries.images(QueryKind.FULL_IMAGE, [0, 1])
    a = _answers([0, 1], ["full_image", "full_image"], drawn_query=[0, 0, 0, 1])
    np.testing.assert_allclose(query_costs(full, a, np.array([102.6, 102.6]), "boxes",
                                           np.zeros(2, bool)), [3, 1])
