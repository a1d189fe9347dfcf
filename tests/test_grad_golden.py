"""The source of a few generated gradients, pinned byte for byte.

Regenerate after an intended change with COTAN_REGEN_GOLDEN=1 and review
the diff: the files under tests/golden/grad_*.py are the specification of
what generated gradients look like (primal sweep, `# grad of:` comments,
no unused zero adjoints, pushes only where needed).
"""

import os

import pytest

import cotan
from tests import grad_golden_fns as fns

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
CASES = [("grad_loop", fns.golden_loop, 0), ("grad_branch", fns.golden_branch, 0),
         ("grad_helper", fns.golden_helper, (0, 1))]


@pytest.mark.parametrize("name,fn,argnums", CASES, ids=[c[0] for c in CASES])
def test_generated_gradient_source_is_pinned(name, fn, argnums):
    text = cotan.source(cotan.grad(fn, argnums=argnums))
    path = os.path.join(GOLDEN, name + ".py")
    if os.environ.get("COTAN_REGEN_GOLDEN") == "1":
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read()
