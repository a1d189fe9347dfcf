"""Golden sources: the exact core form of a few normalizations is pinned, so
a change to what users read is a deliberate one.

Regenerate after an intended change with COTAN_REGEN_GOLDEN=1.
"""

import os

import numpy as np
import pytest

import cotan

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def loop_with_break(x, limit):
    total = 0.0
    for v in x:
        if total > limit:
            break
        total += np.sin(v) * v
    return total


def in_place_update(m):
    m = m.copy()
    row = m[0, :]
    row[1] = 0.0
    m[1, :] *= 2.0
    return m


def scale(v, k=2.0):
    return v * k


def helper_and_branch(x):
    if x.sum() > 0:
        y = scale(x)
    else:
        y = scale(x, k=-1.0) + 1.0
    return np.exp(y)


CASES = {"loop_with_break": loop_with_break, "in_place_update": in_place_update,
         "helper_and_branch": helper_and_branch}


@pytest.mark.parametrize("name", sorted(CASES))
def test_core_form_matches_golden(name):
    text = cotan.source(cotan.normalize(CASES[name]))
    path = os.path.join(GOLDEN, f"normalize_{name}.py")
    if os.environ.get("COTAN_REGEN_GOLDEN"):
        with open(path, "w") as fh:
            fh.write(text)
    with open(path) as fh:
        assert text == fh.read()


def test_golden_cases_still_compute_the_same():
    x = np.array([0.5, 1.5, -2.0, 3.0])
    m = np.arange(6.0).reshape(2, 3)
    assert cotan.normalize(loop_with_break)(x, 1.0) == loop_with_break(x, 1.0)
    np.testing.assert_array_equal(cotan.normalize(in_place_update)(m), in_place_update(m))
    np.testing.assert_array_equal(cotan.normalize(helper_and_branch)(x), helper_and_branch(x))
