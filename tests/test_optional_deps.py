"""cotan imports and works without its optional dependencies (SciPy,
jaxlib, pycuda, mpi4py): each is needed only by the feature that names it."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = """
import sys
for name in ("scipy", "jaxlib", "pycuda", "mpi4py"):
    sys.modules[name] = None          # as if not installed
import numpy as np
import cotan

def f(x):
    return np.sum(np.sin(x) * x)

x = np.linspace(0.1, 1.0, 4)
g = cotan.jit(cotan.grad(f))(x)
assert np.allclose(g, np.cos(x) * x + np.sin(x)), g
assert np.allclose(cotan.vmap(cotan.grad(f))(np.stack([x, x])), [g, g])
print("ok")
"""


def test_import_and_transform_without_optional_dependencies(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, COTAN_CACHE_DIR=str(tmp_path))
    script = tmp_path / "uses_cotan.py"     # cotan reads the function's source
    script.write_text(_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
