"""venvkeeper: find every Python virtual environment on a host and keep it working."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
