"""Simulated annotators; importing the package registers the built-in ones."""

from oracles.base import Answers, Oracle  # noqa: F401
from oracles import human, noisy, simulated  # noqa: F401  (registration)
