"""Shared pytest set-up: the repository root on sys.path so tests import
`cotan` from the checkout, and a seeded random generator."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
