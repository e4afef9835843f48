"""A user's own price table from a TOML or YAML file: `table:FILE`.

The file maps action kinds to seconds, e.g. `verify_box = 2.0`; kinds it leaves out keep the
paper's price for the dataset family, so a study can change one number.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from cost_models.base import CostModel, check_table
from cost_models.paper import DatasetStats, family_table
from harness.core.errors import ConfigError
from harness.core.registry import COST_MODELS


def read_table(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"cost table {path} not found; give table:FILE with a TOML or YAML file")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: malformed cost table ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping from action kind to seconds")
    return data


@COST_MODELS.register("table")
class TableCost(CostModel):
    """Your own seconds per action from a TOML/YAML file (`table:FILE`); missing kinds keep the paper's."""

    def __init__(self, arg: str | None = None, family: str = "voc",
                 stats: DatasetStats | None = None):
        if not arg:
            raise ConfigError("the table cost model needs a file: table:FILE.toml")
        path = Path(arg).expanduser()
        self.table = {**family_table(family, stats),
                      **check_table(read_table(path), str(path))}
