"""Cost models: the paper's constants, a user's table, the stochastic variant, and a contract
every registered cost model meets."""

from __future__ import annotations

import numpy as np
import pytest

from cost_models import load_cost_model
from harness.core.errors import ConfigError
from harness.core.queries import ACTION_KINDS
from harness.core.registry import COST_MODELS

SHARED = {"verify_box": 1.6, "verify_class": 2.7, "draw_box": 35.0, "extreme_click_box": 7.0}


@pytest.mark.parametrize("family, assign, full", [("voc", 26.0, 102.6), ("coco", 38.0, 346.0)])
def test_paper_constants(family, assign, full):
    model = load_cost_model("paper", family=family)
    for kind, seconds in SHARED.items():
        assert model[kind] == seconds
    assert model["assign_class"] == assign
    assert model["full_image"] == full
    assert 0 < model["click"] < 5  # a centre click takes seconds, not tens of seconds
    assert set(model.table) == set(ACTION_KINDS)


def test_paper_family_from_the_spec_and_default():
    assert load_cost_model("paper:coco", family="voc")["full_image"] == 346.0
    assert load_cost_model("paper")["full_image"] == 102.6  # VOC unless told otherwise
    with pytest.raises(ConfigError, match="'imagenet'"):
        load_cost_model("paper", family="imagenet")


def test_seconds_prices_a_batch_in_order():
    model = load_cost_model("paper")
    kinds = np.array(["draw_box", "verify_box", "draw_box", "full_image", "assign_class"])
    np.testing.assert_allclose(model.seconds(kinds), [35.0, 1.6, 35.0, 102.6, 26.0])
    assert model.seconds(np.array([], object)).shape == (0,)


def test_unknown_action_is_an_error_not_free():
    with pytest.raises(ConfigError, match="'teleport'"):
        load_cost_model("paper").seconds(["verify_box", "teleport"])


def test_unknown_cost_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match="paper.*stochastic.*table"):
        load_cost_model("cheap")


# -- user tables --------------------------------------------------------------------------------

def test_table_from_toml_overrides_one_value(tmp_path):
    path = tmp_path / "costs.toml"
    path.write_text("# our annotators are slower at verifying\nverify_box = 2.5\n")
    model = load_cost_model(f"table:{path}")
    assert model["verify_box"] == 2.5
    paper = load_cost_model("paper")
    for kind in ACTION_KINDS:
        if kind != "verify_box":
            assert model[kind] == paper[kind], kind


def test_table_from_yaml_keeps_the_family(tmp_path):
    path = tmp_path / "costs.yaml"
    path.write_text("draw_box: 20\n")
    model = load_cost_model(f"table:{path}", family="coco")
    assert model["draw_box"] == 20.0
    assert model["full_image"] == 346.0 and model["assign_class"] == 38.0
    np.testing.assert_allclose(model.seconds(["draw_box", "verify_box"]), [20.0, 1.6])


@pytest.mark.parametrize("name, text, words", [
    ("t.toml", "teleport = 1.0\n", "'teleport'"),
    ("t.toml", "verify_box = -1.0\n", "verify_box"),
    ("t.yaml", "verify_box: -0.5\n", ">= 0"),
    ("t.yaml", "verify_box: fast\n", "'fast'"),
    ("t.toml", "verify_box = nan\n", "verify_box"),
    ("t.toml", "verify_box = inf\n", "verify_box"),
    ("t.yaml", "verify_box: true\n", "verify_box"),
    ("t.toml", "verify_box = \n", "malformed"),
    ("t.yaml", "verify_box: [1\n", "malformed"),
    ("t.yaml", "!!python/object/apply:os.system ['true']\n", "malformed"),
    ("t.yaml", "- 1\n- 2\n", "mapping"),
])
def test_bad_table_files(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_cost_model(f"table:{path}")
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_table_needs_an_existing_file(tmp_path):
    with pytest.raises(ConfigError, match="needs a file"):
        load_cost_model("table")
    with pytest.raises(ConfigError, match="not found"):
        load_cost_model(f"table:{tmp_path / 'none.toml'}")


# -- stochastic ---------------------------------------------------------------------------------

KINDS = np.array(["verify_box", "draw_box", "full_image", "verify_class"] * 50, object)


def test_stochastic_is_deterministic_for_a_seed():
    model = load_cost_model("stochastic")
    a = model.seconds(KINDS, np.random.default_rng(7))
    b = model.seconds(KINDS, np.random.default_rng(7))
    c = model.seconds(KINDS, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(a > 0) and len(np.unique(a)) == len(a)  # every action priced on its own


def test_stochastic_median_is_the_constant():
    model = load_cost_model("stochastic:0.5", family="coco")
    rng = np.random.default_rng(0)
    for kind, constant in [("verify_box", 1.6), ("full_image", 346.0), ("assign_class", 38.0)]:
        draws = model.seconds(np.full(20_000, kind, object), rng)
        assert np.median(draws) == pytest.approx(constant, rel=0.03)
        assert np.std(np.log(draws)) == pytest.approx(0.5, rel=0.05)
        assert model[kind] == constant  # what budget conversions use


def test_stochastic_sigma_zero_is_the_paper():
    model = load_cost_model("stochastic:0")
    paper = load_cost_model("paper")
    np.testing.assert_allclose(model.seconds(KINDS, np.random.default_rng(0)),
                               paper.seconds(KINDS))


def test_stochastic_needs_an_rng_and_a_sane_sigma():
    with pytest.raises(ConfigError, match="random generator"):
        load_cost_model("stochastic").seconds(KINDS)
    with pytest.raises(ConfigError, match="'wide'"):
        load_cost_model("stochastic:wide")
    with pytest.raises(ConfigError, match="sigma"):
        load_cost_model("stochastic:5")


# -- contract: every registered cost model -------------------------------------------------------

@pytest.fixture
def spec_for(tmp_path):
    table = tmp_path / "one.toml"
    table.write_text("verify_box = 2.0\n")
    args = {"table": str(table)}
    return lambda name: f"{name}:{args[name]}" if name in args else name


@pytest.mark.parametrize("name", COST_MODELS.names())
@pytest.mark.parametrize("family", ["voc", "coco"])
def test_contract_every_cost_model_prices_every_action(name, family, spec_for):
    model = load_cost_model(spec_for(name), family=family)
    kinds = np.array(list(ACTION_KINDS) * 3, object)
    seconds = model.seconds(kinds, np.random.default_rng(0))
    assert seconds.shape == (len(kinds),) and seconds.dtype == np.float64
    assert np.all(np.isfinite(seconds)) and np.all(seconds > 0)
    again = model.seconds(kinds, np.random.default_rng(0))
    np.testing.assert_array_equal(seconds, again)  # deterministic for a seed
    for kind in ACTION_KINDS:
        assert model[kind] > 0
    assert model["full_image"] > model["verify_box"]  # the premise of region-level queries


def test_class_assignment_curve_reproduces_the_papers_two_constants():
    from cost_models.paper import assign_class_seconds

    assert assign_class_seconds(20) == pytest.approx(26.0, abs=0.1)  # VOC
    assert assign_class_seconds(80) == pytest.approx(38.0, abs=0.1)  # COCO
    assert assign_class_seconds(1000) == pytest.approx(60.0)  # an ImageNet image, about a minute
    assert assign_class_seconds(10) < assign_class_seconds(20)


def test_per_object_family_prices_a_dataset_by_its_objects_and_classes():
    from cost_models.paper import DatasetStats, SECONDS_PER_OBJECT

    voc_like = load_cost_model("paper", "per-object", DatasetStats(20, 40_058 / 16_551))
    assert voc_like["full_image"] == pytest.approx(102.6, abs=0.01)  # VOC's own average image
    assert voc_like["assign_class"] == pytest.approx(26.0, abs=0.05)
    dense = load_cost_model("paper", "per-object", DatasetStats(10, 5.0))
    assert dense["full_image"] == pytest.approx(5.0 * SECONDS_PER_OBJECT, abs=0.01)
    assert dense["verify_box"] == 1.6 and dense["draw_box"] == 35.0
    # the other models start from the same per-object prices
    assert load_cost_model("stochastic", "per-object", DatasetStats(10, 5.0))["full_image"] \
        == dense["full_image"]
    with pytest.raises(ConfigError, match="per-object"):
        load_cost_model("paper", "per-object")  # no statistics: cannot price
    assert load_cost_model("paper:voc", "per-object", DatasetStats(10, 5.0))["full_image"] == 102.6
