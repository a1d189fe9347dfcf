"""Big programs compile in parts: the loop nests of straight-line code are
outlined into kernels spread over several LLVM modules, optimized and
compiled on one thread each, then linked in one engine.  These tests pin
that path down: results equal eager NumPy, kernels really are spread,
small programs keep the single-module path, and object files that call
each other load correctly (they did not with position-independent code).
"""

import ctypes

import numpy as np
import pytest

import cotan
from cotan.codegen.llvm import binding as llvm_binding


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return -np.sum((logits - lse) * y) / x.shape[0]


def slice_rows(x):
    return np.sum(x[1:3] ** 2) + np.sum(x[:, ::2] * 3.0) + np.sum(x[0, 1:4])


@pytest.fixture
def two_parts(monkeypatch):
    monkeypatch.setenv("COTAN_COMPILE_THREADS", "2")
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")


def _mlp_args():
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(30, 20)) * 0.3, "b1": rng.normal(size=20),
              "w2": rng.normal(size=(20, 5)) * 0.3, "b2": rng.normal(size=5)}
    x = rng.normal(size=(16, 30))
    y = np.eye(5)[rng.integers(0, 5, 16)]
    return params, x, y


def test_big_gradient_compiles_in_parts_and_matches_eager(two_parts):
    args = _mlp_args()
    g = cotan.grad(mlp_loss)
    jg = cotan.jit(g)
    low = jg.lower(*args)
    texts = low.part_texts()
    assert len(texts) == 2
    assert all("define void @\"cotan.kernel." in t for t in texts), "kernels in both parts"
    assert sum(map(len, texts)) > llvm_binding.BIG_IR
    mods, objects = low._compiled()
    assert objects is not None and len(objects) == 2      # compiled side by side
    got, want = jg(*args), g(*args)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)
    assert "cotan_entry" in low.as_text("llvm") and low.as_text("asm")


def test_per_example_gradient_in_parts_matches_eager(two_parts):
    # the first program that gave wrong numbers: a kernel in the second
    # object multiplying by a constant read 0.0 from its constant pool
    x = np.random.default_rng(1).normal(size=(3, 4, 6))
    g = cotan.vmap(cotan.grad(slice_rows))
    np.testing.assert_allclose(cotan.jit(g)(x), g(x), rtol=1e-12)


def test_small_program_keeps_one_module(two_parts):
    def f(x):
        return np.sin(x) * 2.0 + x

    x = np.linspace(0, 1, 64)
    low = cotan.jit(f).lower(x)
    mods, objects = low._compiled()
    assert len(mods) == 1 and objects is None     # parts linked back: one module
    np.testing.assert_allclose(cotan.jit(f)(x), f(x))


def test_one_thread_means_one_part(monkeypatch):
    monkeypatch.setenv("COTAN_COMPILE_THREADS", "1")
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")
    args = _mlp_args()
    jg = cotan.jit(cotan.grad(mlp_loss))
    assert len(jg.lower(*args).part_texts()) == 1
    got, want = jg(*args), cotan.grad(mlp_loss)(*args)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)


def test_parts_from_the_disk_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COTAN_COMPILE_THREADS", "2")
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COTAN_DISABLE_DISK_CACHE", raising=False)
    args = _mlp_args()
    want = cotan.grad(mlp_loss)(*args)
    first = cotan.jit(cotan.grad(mlp_loss))(*args)
    again = cotan.jit(cotan.grad(mlp_loss))(*args)     # loads the parts' objects
    for k in want:
        np.testing.assert_allclose(first[k], want[k], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(again[k], want[k], rtol=1e-10, atol=1e-12)


def test_objects_calling_each_other_with_constants():
    # two separately compiled objects, each reading a floating constant,
    # calling each other: the layout compile_parts produces
    a = ('declare double @"cotan.t.k1"(double)\n'
         'define double @"cotan.t.k2"(double %x) {\n'
         '  %y = fmul double %x, 7.0\n  ret double %y\n}\n'
         'define double @"cotan.t.entry"(double %x) {\n'
         '  %y = call double @"cotan.t.k1"(double %x)\n'
         '  %z = fadd double %y, 1.5\n  ret double %z\n}\n')
    b = ('declare double @"cotan.t.k2"(double)\n'
         'define double @"cotan.t.k1"(double %x) {\n'
         '  %y = fmul double %x, 3.0\n'
         '  %w = call double @"cotan.t.k2"(double %y)\n  ret double %w\n}\n')
    s = llvm_binding.initialize()
    objects = [llvm_binding._compile_part(t, s)[1] for t in (a, b)]
    native = llvm_binding.NativeModule(llvm_binding.empty_module_for_objects(),
                                       object_codes=objects)
    f = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(native.address("cotan.t.entry"))
    assert f(2.0) == 2.0 * 3.0 * 7.0 + 1.5


def test_small_once_per_call_loops_are_not_vectorized_but_user_loops_are():
    def f(x, y):
        s = np.sum(x * 2.0)               # 256 elements, once per call
        for i in range(3):
            y = y * 0.5 + 1.0             # inside a user loop: kept vectorizable
        return s, y

    low = cotan.jit(f).lower(np.ones(256), np.ones(256))
    text = low.llvm_ir()
    hinted = text.count('!"llvm.loop.vectorize.enable", i1 false')
    loops = text.count(".head:")
    assert 0 < hinted < loops
    got = cotan.jit(f)(np.ones(256), np.ones(256))
    want = f(np.ones(256), np.ones(256))
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])


def test_parts_really_bypass_llvmlites_lock():
    # without the raw C functions the parts compile one after the other:
    # correct, but the compile-time gain is gone without a word
    assert llvm_binding._unlocked("LLVMPY_RunNewModulePassManager") is not None
    assert llvm_binding._unlocked("LLVMPY_TargetMachineEmitToMemory") is not None


def in_place_straight_line(x):
    y = x * 1.0
    y = y + y[::-1]                   # reads the buffer it writes, reversed
    y[1:] = y[:-1] * 2.0              # overlapping shifted view
    z = np.tanh(y) + y[::-1]
    return z * y


def test_outlined_kernels_writing_a_buffer_they_read(two_parts):
    # the written array is noalias only when its buffer is provably not
    # read: these kernels read and write overlapping views of one buffer
    x = np.linspace(-1.0, 1.0, 37)
    low = cotan.jit(in_place_straight_line).lower(x)
    kernels = [line for t in low.part_texts() for line in t.splitlines()
               if line.startswith('define void @"cotan.kernel.')]
    # fresh buffers are written noalias; the kernel writing y while reading
    # y (through the setitem's shifted view) is not
    assert any("noalias" in k for k in kernels)
    assert any("noalias" not in k for k in kernels)
    np.testing.assert_allclose(cotan.jit(in_place_straight_line)(x), in_place_straight_line(x),
                               rtol=1e-14)
