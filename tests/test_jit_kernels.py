"""Specification of the CPU backend's kernel choices: they change speed,
never results.

- a broadcasting chain with a transcendental call (bias + tanh) runs in
  vectors along its contiguous last dimension;
- a returned array is computed in the caller's output memory instead of
  being copied there at the end;
- a mid-sized matrix product is split by rows over cotan's threads.
Each is checked against NumPy on shapes that hit the vector tail, views
and repeated outputs.
"""

import numpy as np
import pytest

import cotan


def bias_tanh(x, b):
    return np.tanh(x + b) * np.exp(b)


@pytest.mark.parametrize("xs, bs", [((37, 13), (13,)), ((300, 301), (300, 1)),
                                    ((3, 5, 9), (5, 1)), ((2, 3, 4, 8), (4, 8)),
                                    ((64, 3), (3,))])
def test_broadcast_transcendental_chain_matches_numpy(xs, bs):
    rng = np.random.default_rng(0)
    x, b = rng.random(xs), rng.random(bs)
    np.testing.assert_allclose(cotan.jit(bias_tanh)(x, b), bias_tanh(x, b), rtol=1e-13)


def sin_of_transpose(x, b):
    return np.sin(x.T + b)


def test_strided_operand_keeps_scalar_loop():
    rng = np.random.default_rng(1)
    x, b = rng.random((30, 41)), rng.random(30)
    np.testing.assert_allclose(cotan.jit(sin_of_transpose)(x, b), sin_of_transpose(x, b),
                               rtol=1e-13)


def same_array_three_times(x):
    y = np.sin(x) * 2
    return y, y, y.T


def loop_carried_result(x):
    s = x * 1.0
    for i in range(3):
        s = s * 0.5 + np.sin(s)
    return s


def view_then_overwrite(x):
    y = np.exp(x)
    z = y[1:] + 1
    y = y * 2
    return z, y


def dict_of_products(x, w):
    h = x @ w
    return {"h": h, "t": np.tanh(h), "s": np.sum(h, axis=0)}


@pytest.mark.parametrize("fn", [same_array_three_times, loop_carried_result,
                                view_then_overwrite])
def test_returned_arrays_in_output_memory_match_numpy(fn):
    x = np.random.default_rng(2).random((6, 6))
    got, want = cotan.jit(fn)(x), fn(x)
    for g, w in zip(cotan.tree_util.tree_leaves(got), cotan.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_returned_outputs_are_distinct_arrays():
    x = np.random.default_rng(3).random((6, 6))
    a, b, _ = cotan.jit(same_array_three_times)(x)
    assert not np.shares_memory(a, b)
    got = cotan.jit(dict_of_products)(x, x)
    for k, v in dict_of_products(x, x).items():
        np.testing.assert_allclose(got[k], v, rtol=1e-13)


def matmul(a, b):
    return a @ b


def matmul_at(a, b):
    return a.T @ b


def matmul_bt(a, b):
    return a @ b.T


@pytest.mark.parametrize("fn, ashape, bshape", [
    (matmul, (301, 400), (400, 257)), (matmul_at, (400, 301), (400, 257)),
    (matmul_bt, (301, 400), (257, 400))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_split_matmul_matches_numpy(fn, ashape, bshape, dtype):
    # 2*m*n*k = 62 MFLOP: above the row-split threshold
    rng = np.random.default_rng(4)
    a, b = rng.random(ashape).astype(dtype), rng.random(bshape).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(cotan.jit(fn)(a, b), fn(a, b), rtol=tol)


_NO_THREADS = r'''
import ctypes, sys
import numpy as np
import cotan
from cotan.codegen.llvm import binding as llvm_binding
import llvmlite.binding as llvm

llvm_binding.initialize()
calls = []
@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                  ctypes.c_void_p)
def refuse(*args):
    calls.append(1)
    return 11    # EAGAIN
llvm.add_symbol("pthread_create", ctypes.cast(refuse, ctypes.c_void_p).value)

def chain(x):
    return np.sin(x) * np.exp(-x * x) + x ** 3

x = np.linspace(-2, 2, 300_001)
np.testing.assert_allclose(cotan.jit(chain)(x), chain(x), rtol=1e-12, atol=1e-14)
assert calls, "the kernel was expected to ask for threads"
print("ok")
'''


def test_parallel_loop_without_threads_runs_every_chunk(tmp_path):
    # pthread_create failing (a thread limit) must neither crash (joining an
    # unset thread id) nor skip the chunk that thread would have run
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, COTAN_DISABLE_DISK_CACHE="1",
               COTAN_NUM_THREADS="4")
    script = tmp_path / "no_threads.py"     # a file: cotan reads its source
    script.write_text(_NO_THREADS)
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
