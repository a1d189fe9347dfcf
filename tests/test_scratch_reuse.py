"""Scratch memory of compiled entries kept across calls (codegen/llvm/emit.py's
scratch records, runtime/dispatch.py's and runtime/fastcall.py's pools).

A jitted gradient's arena and reverse-mode stack buffers used to be
malloc'd and freed on every call: with glibc's default thresholds each call
page-faulted its working set in again, and only an eager `grad` (which
raises malloc's thresholds process-wide) made that go away, so a jitted
gradient's speed depended on what had run before it.  Kept per entry and
per call in flight, the scratch costs no faults after warm-up either way;
it is bounded, released on demand and when the function dies, and never
shared by two calls at once (threads, a jitted function called from a
print callback)."""

import gc
import json
import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest

import cotan
from cotan.runtime import dispatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="page-fault counts and the malloc setting are Linux/glibc's")


def loop_loss(x, w):
    for i in range(400):
        x = np.tanh(x * w) + 0.1 * x
    return np.sum(x)


def loop_loss_grad_fd(x, w, eps=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = eps
        g[k] = (loop_loss(x + e, w) - loop_loss(x - e, w)) / (2 * eps)
    return g


CHILD = r"""
import json, resource, sys
import numpy as np
import cotan
sys.path.insert(0, {tests!r})
from test_scratch_reuse import loop_loss
rng = np.random.default_rng(0)
x, w = rng.standard_normal(2000), rng.standard_normal(2000) * 0.5
g = cotan.jit(cotan.grad(loop_loss, argnums=(0, 1)))
path = {path!r}
call = g if path == "fast" else g._call_slow
call(x, w)
if {eager!r}:
    cotan.grad(loop_loss)(x, w)
for _ in range(3):
    call(x, w)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    call(x, w)
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10))
"""


def faults_per_call(eager, path):
    env = dict(os.environ, PYTHONPATH=ROOT, COTAN_KEEP_FREED_MEMORY="0")
    code = CHILD.format(tests=os.path.join(ROOT, "tests"), eager=eager, path=path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@linux_glibc
@pytest.mark.parametrize("path", ["fast", "python"])
def test_jitted_gradient_does_not_page_fault_per_call_whatever_ran_before(path):
    # 400 pushes of 16 KB on three stacks (~19 MB per call): malloc'd and
    # freed per call this was ~4,700 faults a call before an eager grad
    # and ~0 after it; kept, it is ~0 both ways (COTAN_KEEP_FREED_MEMORY=0
    # in the child: no process-wide malloc setting helps)
    before = faults_per_call(False, path)
    after = faults_per_call(True, path)
    assert before < 50 and after < 50, (before, after)


def test_kept_scratch_gives_the_same_gradient_each_call():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(6), rng.standard_normal(6) * 0.5
    g = cotan.jit(cotan.grad(loop_loss))
    want = loop_loss_grad_fd(x, w)
    for _ in range(3):                  # the reused stacks start empty each call
        np.testing.assert_allclose(g(x, w), want, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(g._call_slow(x, w), want, rtol=1e-6, atol=1e-8)


def test_scratch_is_released_on_demand():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(500), rng.standard_normal(500)
    g = cotan.jit(cotan.grad(loop_loss))
    want = g(x, w)
    g(x, w)
    g._call_slow(x, w)
    kept = g.scratch_kept()
    assert kept >= 400 * 500 * 8        # at least the stack of x
    assert g.release_scratch() == kept
    assert g.scratch_kept() == 0
    np.testing.assert_array_equal(g(x, w), want)    # allocates anew
    again = g.scratch_kept()
    assert again > 0
    assert cotan.release_scratch() >= again    # the public name of release_all_scratch
    assert g.scratch_kept() == 0


def test_scratch_above_the_limit_is_not_kept(monkeypatch):
    monkeypatch.setenv("COTAN_SCRATCH_KEEP_MB", "1")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(500), rng.standard_normal(500)   # ~5 MB of stacks
    g = cotan.jit(cotan.grad(loop_loss))
    want = g(x, w)
    for _ in range(3):
        np.testing.assert_array_equal(g(x, w), want)
        np.testing.assert_array_equal(g._call_slow(x, w), want)
    assert g.scratch_kept() == 0
    small = rng.standard_normal(20), rng.standard_normal(20)    # ~200 KB
    g(*small)
    g(*small)
    assert 0 < g.scratch_kept() <= 1 << 20


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def big_scratch(x):
    y = np.sin(x) * 2.0
    z = np.cos(y) + y
    return np.sum(z * y)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize("path", ["fast", "python"])
def test_scratch_is_freed_when_the_function_dies(path):
    x = np.random.default_rng(4).standard_normal(2 << 20)     # 16 MB
    g = cotan.jit(cotan.grad(big_scratch))
    call = g if path == "fast" else g._call_slow
    call(x)
    call(x)
    kept = g.scratch_kept()
    assert kept >= 32 << 20
    rss = _rss()
    del g, call
    gc.collect()
    # blocks this large are mmapped: freeing them returns them to the kernel
    assert rss - _rss() > kept // 2


def test_threads_never_share_scratch():
    rng = np.random.default_rng(5)
    inputs = [(rng.standard_normal(300), rng.standard_normal(300) * 0.5) for _ in range(8)]
    g = cotan.jit(cotan.grad(loop_loss, argnums=(0, 1)))
    wants = [g(*a) for a in inputs]
    errors = []
    barrier = threading.Barrier(8)

    def work(k):
        try:
            barrier.wait(timeout=30)
            call = g if k % 2 else g._call_slow      # both pools
            for _ in range(20):
                got = call(*inputs[k])
                for a, b in zip(got, wants[k]):
                    np.testing.assert_array_equal(a, b)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert g.scratch_kept() <= 2 * dispatch.scratch_limit()


def printing_loop(x, w):
    for i in range(50):
        x = np.tanh(x * w) + 0.1 * x
    print("norm", np.sum(x * x))
    for i in range(50):
        x = np.tanh(x * w)
    return x


def test_a_call_from_a_print_callback_gets_its_own_scratch(monkeypatch):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(64), rng.standard_normal(64)
    x2 = rng.standard_normal(64)
    jf = cotan.jit(printing_loop)
    jf(x, w)
    inner, entered = [], []

    class Reentrant:
        """stdout that runs the same compiled function while it prints"""
        def write(self, text):
            if not entered and "norm" in text:
                entered.append(True)
                inner.append(jf(x2, w))
            return len(text)

        def flush(self):
            pass
    monkeypatch.setattr(sys, "stdout", Reentrant())
    outer = jf(x, w)
    monkeypatch.undo()
    assert inner
    with np.errstate(all="ignore"):
        import io
        import contextlib
        with contextlib.redirect_stdout(io.StringIO()):
            want_outer, want_inner = printing_loop(x, w), printing_loop(x2, w)
    np.testing.assert_allclose(outer, want_outer, rtol=1e-12)
    np.testing.assert_allclose(inner[0], want_inner, rtol=1e-12)
