"""Query strategies, one file each; importing this package registers the built-in ones."""

from strategies.base import PoolState, Strategy  # noqa: F401
from strategies import cdal, coreset, delr, entropy, random_images  # noqa: F401  (registration)
