"""Query strategies, one file each; importing this package registers the built-in ones."""

from strategies.base import PoolState, Strategy  # noqa: F401
from strategies import (  # noqa: F401  (registration)
    adaptive_switch, cdal, coreset, delr, entropy, ll4al, miaod, omni, random_images)
