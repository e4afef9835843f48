"""Cost models: seconds per annotator action. Importing the package registers the built-ins."""

from cost_models.base import CostModel, load_cost_model  # noqa: F401
from cost_models import paper, stochastic, table  # noqa: F401  (registration)
