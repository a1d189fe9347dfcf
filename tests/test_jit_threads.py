"""Jitted functions called from many threads at once, with inputs of
several shapes so that compiles happen concurrently: each call gets the
entry of its own signature, one signature compiles once, LLVM is entered
by one compile at a time (big programs still compile their parts in
parallel), and results match eager NumPy.  Bounded: a few seconds."""

import threading
import time

import numpy as np
import pytest

import cotan
from cotan.codegen.llvm import binding as llvm_binding

THREADS = 8


def energy(x):
    return np.sum(x * x) + np.sum(np.sin(x))


def energy_grad(x):
    return 2.0 * x + np.cos(x)


def loop_energy(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.tanh(x[i]) * x[i]
    return s


def run_threads(work, n=THREADS):
    """Run work(k) on n threads released together; re-raise the first
    failure."""
    barrier = threading.Barrier(n)
    errors = []

    def body(k):
        try:
            barrier.wait(timeout=30)
            work(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def counting(f):
    """Count f's compiles per signature key."""
    counts = {}
    lock = threading.Lock()
    inner = f._compile_locked

    def wrapped(key, avals):
        with lock:
            counts[key] = counts.get(key, 0) + 1
        return inner(key, avals)
    f._compile_locked = wrapped
    return counts


# long enough arrays that native calls overlap: ctypes releases the GIL
SIZES = [20_003, 40_001, 60_007, 80_009, 3, 5, 7]


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    # every signature really compiles in this process
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")


@pytest.mark.parametrize("path", ["fast", "python"])
def test_concurrent_misses_of_several_shapes(path):
    f = cotan.jit(energy)
    counts = counting(f)
    call = f if path == "fast" else f._call_slow
    inputs = [np.linspace(-1.0, 1.0, n) for n in SIZES]
    wants = [energy(x) for x in inputs]

    def work(k):
        for r in range(40):
            j = (k + r) % len(inputs)
            np.testing.assert_allclose(call(inputs[j]), wants[j], rtol=1e-12)
    t0 = time.perf_counter()
    run_threads(work)
    assert time.perf_counter() - t0 < 20
    assert len(counts) == len(SIZES)
    assert all(c == 1 for c in counts.values()), counts


@pytest.mark.parametrize("transform", ["grad", "vmap", "loop_grad"])
def test_concurrent_transformed(transform):
    if transform == "grad":
        f, ref = cotan.jit(cotan.grad(energy)), energy_grad
        inputs = [np.linspace(-2.0, 2.0, n) for n in (4, 9, 17, 30_001)]
    elif transform == "vmap":
        f = cotan.jit(cotan.vmap(energy))
        ref = lambda xs: np.array([energy(x) for x in xs])  # noqa: E731
        inputs = [np.linspace(-1.0, 1.0, b * n).reshape(b, n)
                  for b, n in ((2, 3), (3, 5), (5, 2), (400, 50))]
    else:
        f = cotan.jit(cotan.grad(loop_energy))
        ref = lambda x: np.tanh(x) + x / np.cosh(x) ** 2  # noqa: E731
        inputs = [np.linspace(-1.0, 1.0, n) for n in (3, 4, 6, 8)]
    counts = counting(f)
    wants = [ref(x) for x in inputs]

    def work(k):
        for r in range(25):
            j = (k * 3 + r) % len(inputs)
            np.testing.assert_allclose(f(inputs[j]), wants[j], rtol=1e-10, atol=1e-12)
    run_threads(work)
    assert sorted(counts.values()) == [1] * len(inputs)


def test_parallel_part_compiles_beside_other_compiles(monkeypatch):
    # every multi-part program takes the parallel-parts path (llvmlite's
    # lock bypassed on its workers) while other threads compile small ones
    monkeypatch.setattr(llvm_binding, "BIG_IR", 0)
    fns = [cotan.jit(cotan.grad(loop_energy)), cotan.jit(energy),
           cotan.jit(cotan.vmap(energy)), cotan.jit(cotan.grad(energy))]
    refs = [lambda x: np.tanh(x) + x / np.cosh(x) ** 2, energy,
            lambda xs: np.array([energy(x) for x in xs]), energy_grad]

    def work(k):
        f, ref = fns[k % len(fns)], refs[k % len(fns)]
        for n in (3, 5, 6, 7):
            x = np.linspace(-1.0, 1.0, n * (2 if k % len(fns) == 2 else 1))
            if k % len(fns) == 2:
                x = x.reshape(2, n)
            np.testing.assert_allclose(f(x), ref(x), rtol=1e-10, atol=1e-12)
    run_threads(work)


def test_one_shape_many_calls():
    f = cotan.jit(energy)
    x = np.linspace(-1.0, 1.0, 50)
    want = energy(x)

    def work(k):
        for _ in range(300):
            assert abs(f(x) - want) < 1e-12
    run_threads(work)
