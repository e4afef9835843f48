"""Figures and tables drawn from run folders (never from live objects)."""
