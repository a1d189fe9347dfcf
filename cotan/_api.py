"""The public transformations, gathered in one place for `cotan/__init__`.

Owns nothing but the list of exported names and thin wrappers; each
transformation lives in its stage's package.
"""

from .source import source, normalize  # noqa: F401

__all__ = ["source", "normalize"]
