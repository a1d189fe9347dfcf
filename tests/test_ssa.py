"""Versioned names (autodiff/ssa.py): same results on the whole program
corpus, valid core form, and no variable assigned twice outside loops."""

import gast
import numpy as np
import pytest

from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import materialize
from cotan.autodiff.normalize import normalize_function
from cotan.autodiff.ssa import version_names
from tests.programs import PROGRAMS


def _copy(args):
    return [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]


def _assignments_outside_loops(stmts, counts):
    for s in stmts:
        if isinstance(s, gast.Assign):
            t = s.targets[0].id
            if t != "_":
                counts[t] = counts.get(t, 0) + 1
        elif isinstance(s, gast.If):
            # one assignment per path is one assignment
            a, b = {}, {}
            _assignments_outside_loops(s.body, a)
            _assignments_outside_loops(s.orelse, b)
            for k in set(a) | set(b):
                counts[k] = counts.get(k, 0) + max(a.get(k, 0), b.get(k, 0))
    return counts


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_versioned_program_computes_the_same(prog):
    args = prog.make_args(np.random.default_rng(0))
    core = version_names(normalize_function(prog.fn))
    validate(core.node)
    got = materialize(core, "versioned")(*_copy(args))
    want = prog.fn(*_copy(args))
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=1e-12, atol=0)
    counts = _assignments_outside_loops(core.node.body[:-1], {})
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert not twice, f"assigned more than once outside loops: {twice}"
