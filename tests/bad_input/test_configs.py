"""Every malformed config of the corpus: one ConfigError from `resolve`; through `run` and
`resume` a non-zero exit with one `error:` paragraph and no result written. A YAML Python tag
is refused without running anything."""

from __future__ import annotations

import pytest

from harness.campaign.config import resolve, save_config
from harness.cli import main
from harness.core.errors import ConfigError
from tests.bad_input.check import assert_one_error, files_under
from tests.bad_input.corpus import CONFIGS


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_resolve_gives_one_config_error(name, tmp_path):
    case = CONFIGS[name](tmp_path)
    with pytest.raises(ConfigError) as caught:
        resolve(case.target)
    for word in case.words:
        assert word in str(caught.value), f"{word!r} not in {str(caught.value)!r}"
    assert not (tmp_path / "was-run").exists()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_run_with_a_bad_config_fails_cleanly(name, tmp_path, capsys):
    case = CONFIGS[name](tmp_path)
    runs = tmp_path / "runs"
    assert main(["run", "--config", case.target, "--out", str(runs), "--quiet"]) == 2
    assert_one_error(capsys.readouterr().err, case.words)
    assert files_under(runs) == []
    assert not (tmp_path / "was-run").exists()


def test_resume_refuses_a_tampered_run_config(tmp_path, capsys):
    """A run folder's config.yaml edited to carry a Python tag: resume stops before running."""
    run = tmp_path / "runs" / "digits" / "random" / "seed0"
    save_config(resolve(None, strategy="random", out=str(tmp_path / "runs")), run / "config.yaml")
    marker = tmp_path / "was-run"
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(
        "seed: 0", f"seed: !!python/object/apply:os.system ['touch {marker}']"))
    before = files_under(tmp_path / "runs")
    assert main(["resume", str(run), "--quiet"]) == 2
    assert_one_error(capsys.readouterr().err, (str(config), "Python"))
    assert files_under(tmp_path / "runs") == before
    assert not marker.exists()
