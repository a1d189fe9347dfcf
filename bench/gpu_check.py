#!/usr/bin/env python3
"""The GPU check: one prepared run of at most ~8 minutes on the offline GPU machine.

Owns installing the carried wheels (`.whl/`, built by bench/gpu_bundle.sh)
into a scratch site folder, running pycuda's smoke test and the cuda tests
(`pytest -m cuda`) on the GPU, and measuring the cuda backend in one
process against jax.jit on the GPU and CuPy: a D2D copy (the bandwidth
reference), a fused elementwise chain on 2^26 float32 and float64, a
fused reduction, an MLP's loss and gradient, a 1000-step Python loop and
the call overhead of a tiny jitted function.  Rounds are interleaved
(every implementation once per round) and medians reported; every section
is guarded, so one failure loses nothing else; a watchdog writes what was
measured and exits at the global deadline even if a call hangs.  Writes
gpu_check.json and gpu_check.md to $OUT (or --out).  Must not be imported
by cotan or the tests (they only run it with --plan).

    python3 bench/gpu_check.py [--deadline 480] [--out DIR] [--plan]
"""

import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHL = os.path.join(ROOT, ".whl")
COPY_REFERENCE_TBS = 4.3        # D2D copy measured on the H200 earlier (bytes read + written)

SECTIONS = [
    ("install", "install .whl/ wheels (pycuda, its deps, gast) into a scratch site folder"),
    ("smoke", "pycuda_smoke.py: init, context, memcpy, PTX launch"),
    ("tests", "pytest -m cuda tests/test_cuda*.py on the GPU (6 processes side by side)"),
    ("copy", "device-to-device copy bandwidth, 2^26 float32 (the reference)"),
    ("fused_f32", "sin(x)*exp(-x*x)+x**3, 2^26 float32: time, GB/s, % of copy"),
    ("fused_f64", "the same on float64"),
    ("reduction", "sum(exp(x)*x), 2^26 float32: time, GB/s, % of copy"),
    ("mlp", "MLP 784-512-10, batch 4096, float32: jit(loss) and jit(grad(loss))"),
    ("loop", "1000-step Python loop (host-driven launches) vs jax fori_loop"),
    ("overhead", "call overhead of jitted x + 1 on a device array"),
]


# ---------------------------------------------------------------- programs (cotan reads their source)

import numpy as np  # noqa: E402  (the machine has NumPy; everything else is imported late)


def fused(x):
    return np.sin(x) * np.exp(-x * x) + x ** 3


def reduction(x):
    return np.sum(np.exp(x) * x)


def mlp_loss(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (logits - lse), axis=1))


def mlp_loss_mse(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    return np.mean((logits - y) ** 2)


def loop1000(x):
    for i in range(1000):
        x = x * 0.999 + 0.001
    return x


def add1(x):
    return x + 1.0


# ---------------------------------------------------------------- the run's bookkeeping

class Run:
    def __init__(self, out_dir, deadline_s):
        self.out_dir = out_dir
        self.t0 = time.time()
        self.deadline = self.t0 + deadline_s
        self.results = {"meta": {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                 "deadline_s": deadline_s},
                        "sections": {}}
        self.results["meta"].update(python=platform.python_version(), host=platform.node())
        self.lock = threading.Lock()
        self.done = False

    def left(self):
        return self.deadline - time.time()

    def section(self, name, fn, need_s=5.0):
        if self.left() < need_s:
            self.record(name, {"ok": False, "skipped": f"deadline: {self.left():.0f}s left, "
                                                      f"{need_s:.0f}s needed"})
            return None
        t = time.time()
        print(f"== {name} ({self.left():.0f}s left)", flush=True)
        try:
            r = fn() or {}
            r = dict(ok=True, **r)
        except Exception as e:  # noqa: BLE001  (a section's failure is recorded, not fatal)
            r = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000],
                 "traceback": traceback.format_exc()[-3000:]}
        r["wall_s"] = round(time.time() - t, 2)
        self.record(name, r)
        print(f"   {name}: {'ok' if r['ok'] else 'FAILED ' + r.get('error', '')[:300]}",
              flush=True)
        return r

    def record(self, name, r):
        with self.lock:
            self.results["sections"][name] = r
            self.write()

    def write(self):
        os.makedirs(self.out_dir, exist_ok=True)
        self.results["meta"]["elapsed_s"] = round(time.time() - self.t0, 1)
        with open(os.path.join(self.out_dir, "gpu_check.json"), "w") as f:
            json.dump(self.results, f, indent=1, default=str)
        try:
            text = markdown(self.results)
        except Exception as e:  # noqa: BLE001  (the JSON above still holds everything)
            text = f"markdown failed: {type(e).__name__}: {e}\n"
        with open(os.path.join(self.out_dir, "gpu_check.md"), "w") as f:
            f.write(text)

    def watchdog(self):
        """At the deadline (+ a grace) write what there is and exit, even if
        the main thread is stuck in a driver call."""
        def watch():
            while not self.done:
                if time.time() > self.deadline + 15:
                    with self.lock:
                        self.results["meta"]["watchdog"] = "deadline passed: exited"
                        self.write()
                    print("== watchdog: deadline passed, results written, exiting", flush=True)
                    os._exit(3)
                time.sleep(1)
        threading.Thread(target=watch, daemon=True).start()


# ---------------------------------------------------------------- timing

def interleaved(impls, rounds, inner, run, min_rounds=3):
    """{name: median seconds per call}: each round calls every implementation
    `inner` times back to back (async) and waits for the last; rounds
    interleave the implementations so drift hits all alike."""
    times = {n: [] for n in impls}
    for name, (call, sync) in impls.items():        # warm up: compile, allocate
        sync(call())
        sync(call())
    for r in range(rounds):
        if r >= min_rounds and run.left() < 20:
            break
        for name, (call, sync) in impls.items():
            t = time.perf_counter()
            out = None
            for _ in range(inner):
                out = call()
            sync(out)
            times[name].append((time.perf_counter() - t) / inner)
    return {n: statistics.median(v) for n, v in times.items() if v}, \
        {n: len(v) for n, v in times.items()}


class Env:
    """What the benchmarks need, each part optional: cotan on cuda, JAX on
    the GPU, CuPy."""

    def __init__(self):
        self.errors = {}
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")   # leave room for others
        import cotan
        self.cotan = cotan
        self.dev = cotan.devices("cuda")[0]
        from cotan.runtime.cuda_device import get_runtime
        self.rt = get_runtime(self.dev)
        try:
            import jax
            import jax.numpy as jnp
            jax.config.update("jax_enable_x64", True)
            # full float32 products, as cuBLAS's default math mode (no TF32)
            jax.config.update("jax_default_matmul_precision", "highest")
            self.jax, self.jnp = jax, jnp
            self.jdev = jax.devices("gpu")[0]
        except Exception as e:  # noqa: BLE001
            self.jax = None
            self.errors["jax"] = f"{type(e).__name__}: {e}"
        try:
            import cupy
            self.cp = cupy
        except Exception as e:  # noqa: BLE001
            self.cp = None
            self.errors["cupy"] = f"{type(e).__name__}: {e}"

    def cotan_sync(self, out):
        leaves = self.cotan.tree_util.tree_flatten(out)[0]
        for leaf in leaves[-1:]:
            if hasattr(leaf, "block_until_ready"):
                leaf.block_until_ready()

    def jax_sync(self, out):
        self.jax.block_until_ready(out)

    def cupy_sync(self, out):
        self.cp.cuda.get_current_stream().synchronize()

    def put(self, x):
        """`x` on the GPU, in the array type jit(backend="cuda") uses in place.
        Until runtime/devices.DeviceArray and cuda_dispatch's own CudaArray
        are one type, wrap the device buffer in the latter (else every call
        would copy 2^26 elements to the host and back)."""
        d = self.cotan.device_put(x, self.dev)
        try:
            from cotan.runtime.cuda_dispatch import CudaArray
        except ImportError:
            return d
        if type(d) is CudaArray:
            return d
        from cotan.codegen.abstract import ShapedArray
        self.errors["device_array_type"] = "cuda_dispatch.CudaArray (wrapped)"
        return CudaArray(d._buf, ShapedArray(d.shape, d.dtype), self.rt)

    def jput(self, x):
        return self.jax.device_put(x, self.jdev)


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------- sections

def section_install(run):
    wheels = sorted(glob.glob(os.path.join(WHL, "*.whl")) + glob.glob(os.path.join(WHL, "deps", "*.whl")))
    have = {}
    for mod in ("pycuda", "gast"):
        have[mod] = subprocess.run([sys.executable, "-c", f"import {mod}"],
                                   capture_output=True).returncode == 0
    site = os.path.join("/tmp", "cotan-gpu-site")
    if not all(have.values()):
        if not wheels:
            raise RuntimeError(f"no wheels in {WHL} and missing {have}: build them with "
                               "bench/gpu_bundle.sh and carry .whl")
        out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                              "--no-deps", "--target", site] + wheels,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("pip install failed: " + out.stderr[-2000:])
    if os.path.isdir(site):
        sys.path.insert(0, site)
        os.environ["PYTHONPATH"] = os.pathsep.join([site, ROOT, os.environ.get("PYTHONPATH", "")])
    else:
        os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, ROOT)
    return {"wheels": [os.path.basename(w) for w in wheels], "already_installed": have,
            "site": site}


def section_smoke(run):
    script = os.path.join(WHL, "pycuda_smoke.py")
    if not os.path.exists(script):
        script = "/work/shared/gpu/pycuda_smoke.py"
    if not os.path.exists(script):
        return {"skipped": "pycuda_smoke.py not carried"}
    out = subprocess.run([sys.executable, script], capture_output=True, text=True,
                         timeout=min(90, max(10, run.left() - 300)))
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError("smoke failed:\n" + text[-2000:])
    return {"summary": [ln for ln in text.splitlines() if ln.startswith(("PASS", "FAIL", "SUMMARY"))]}


def section_tests(run, budget_s, shards=6):
    """pytest -m cuda over tests/test_cuda*.py as `shards` processes side by
    side (bench/gpu_shard.py splits the collected tests): a cold nvcc cache
    makes the run compile-bound, on the CPU's cores."""
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "test_cuda*.py")))
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
           "-p", "gpu_shard", "-rfEx", "--tb=short", "--continue-on-collection-errors"] + files
    procs = []
    for k in range(shards):
        env = dict(os.environ, COTAN_CACHE_DIR="/tmp/cotan-gpu-cache", COTAN_SHARD=f"{k}/{shards}",
                   PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "bench"),
                                               os.environ.get("PYTHONPATH", "")]))
        log = open(os.path.join("/tmp", f"cotan-cuda-tests-{k}.log"), "w+")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       env=env), log))
    end = time.time() + budget_s
    rcs = []
    for p, log in procs:
        try:
            rcs.append(p.wait(timeout=max(1.0, end - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rcs.append("timeout")
    counts = {}
    failures = []
    texts = []
    for k, (p, log) in enumerate(procs):
        log.seek(0)
        text = log.read()
        log.close()
        texts.append(f"===== shard {k}/{shards} (rc {rcs[k]})\n{text}")
        tail = text.strip().splitlines()[-1] if text.strip() else ""
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|"
                                  r"deselected)", tail):
            what = "error" if what.startswith("error") else what
            counts[what] = counts.get(what, 0) + int(n)
        failures += [ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    with open(os.path.join(run.out_dir, "cuda_tests.log"), "w") as f:
        f.write("\n".join(texts))
    counts.pop("deselected", None)     # every shard deselects the others' tests
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no result"
    if "timeout" in rcs:
        summary += f" (stopped at the {budget_s:.0f}s budget)"
    return {"rcs": rcs, "counts": counts, "summary": summary, "failures": failures[:60],
            "all_passed": all(rc in (0, 5) for rc in rcs) and not counts.get("failed")
            and not counts.get("error"), "files": [os.path.basename(f) for f in files]}


N26 = 1 << 26


def section_copy(run, env):
    rt = env.rt
    nb = N26 * 4
    src, dst = rt.empty(nb), rt.empty(nb)
    rt.memset_zero(src, nb)
    rt.memset_zero(dst, nb)
    impls = {"cotan": (lambda: rt.copy(dst, src, nb), lambda out: rt.synchronize())}
    if env.cp is not None:
        cs = env.cp.zeros(N26, env.cp.float32)
        cd = env.cp.empty_like(cs)
        impls["cupy"] = (lambda: cd.__setitem__(Ellipsis, cs), env.cupy_sync)
    if env.jax is not None:
        js = env.jput(np.zeros(N26, np.float32))
        jcopy = env.jax.jit(lambda a: a + np.float32(0))   # XLA elides a bare copy
        impls["jax"] = (lambda: jcopy(js), env.jax_sync)
    med, n = interleaved(impls, rounds=9, inner=20, run=run)
    gbs = {k: 2 * nb / t / 1e9 for k, t in med.items()}
    best = max(gbs["cotan"], gbs.get("cupy", 0))
    run.copy_gbs = best
    return {"seconds": med, "rounds": n, "GB_per_s": gbs, "reference_GB_per_s": best,
            "reference_from_readme_GB_per_s": COPY_REFERENCE_TBS * 1e3,
            "note": "cotan = cuMemcpyDtoDAsync, cupy = a[...] = b; jax = jit(a + 0) (a kernel); "
                    "bytes = read + written"}


def _bandwidth_rows(med, nbytes, run):
    ref = getattr(run, "copy_gbs", None) or COPY_REFERENCE_TBS * 1e3
    gbs = {k: nbytes / t / 1e9 for k, t in med.items()}
    return gbs, {k: 100.0 * v / ref for k, v in gbs.items()}, ref


def section_fused(run, env, dtype):
    x = np.random.default_rng(0).uniform(-1, 1, N26).astype(dtype)
    impls = {}
    cf = env.cotan.jit(fused, backend="cuda")
    xd = env.put(x)
    impls["cotan"] = (lambda: cf(xd), env.cotan_sync)
    if env.jax is not None:
        jnp = env.jnp
        jf = env.jax.jit(lambda a: jnp.sin(a) * jnp.exp(-a * a) + a ** 3)
        xj = env.jput(x)
        impls["jax"] = (lambda: jf(xj), env.jax_sync)
    if env.cp is not None:
        cp = env.cp
        cfu = cp.fuse(kernel_name="fused_bench")(lambda a: cp.sin(a) * cp.exp(-a * a) + a ** 3)
        xc = cp.asarray(x)
        impls["cupy"] = (lambda: cfu(xc), env.cupy_sync)
    # correctness first: cotan's result against NumPy on a slice and JAX in full
    got = np.asarray(cf(xd))
    check = {"rel_err_vs_numpy_1e6": rel_err(got[:1 << 20], fused(x[:1 << 20]))}
    if env.jax is not None:
        check["rel_err_vs_jax"] = rel_err(got, np.asarray(impls["jax"][0]()))
    del got
    med, n = interleaved(impls, rounds=9, inner=10, run=run)
    nbytes = 2 * x.nbytes
    gbs, pct, ref = _bandwidth_rows(med, nbytes, run)
    return {"seconds": med, "rounds": n, "GB_per_s": gbs, "pct_of_copy": pct,
            "copy_GB_per_s": ref, "check": check,
            "cotan_over_jax": med["cotan"] / med["jax"] if "jax" in med else None,
            "goal": ">= 80% of copy"}


def section_reduction(run, env):
    x = np.random.default_rng(1).uniform(-1, 1, N26).astype(np.float32)
    cf = env.cotan.jit(reduction, backend="cuda")
    xd = env.put(x)
    impls = {"cotan": (lambda: cf(xd), env.cotan_sync)}
    if env.jax is not None:
        jnp = env.jnp
        jf = env.jax.jit(lambda a: jnp.sum(jnp.exp(a) * a))
        xj = env.jput(x)
        impls["jax"] = (lambda: jf(xj), env.jax_sync)
    if env.cp is not None:
        cp = env.cp
        try:
            cfu = cp.fuse(kernel_name="red_bench")(lambda a: cp.sum(cp.exp(a) * a))
            cfu(cp.asarray(x[:1024]))
        except Exception:  # noqa: BLE001  (older CuPy: no reduction in fuse)
            def cfu(a):
                return cp.sum(cp.exp(a) * a)
        xc = cp.asarray(x)
        impls["cupy"] = (lambda: cfu(xc), env.cupy_sync)
    want = float(np.sum(np.exp(x.astype(np.float64)) * x.astype(np.float64)))
    got = float(np.asarray(cf(xd)))
    check = {"cotan": got, "float64_reference": want, "rel_err": abs(got - want) / abs(want)}
    med, n = interleaved(impls, rounds=9, inner=10, run=run)
    gbs, pct, ref = _bandwidth_rows(med, x.nbytes, run)
    return {"seconds": med, "rounds": n, "GB_per_s": gbs, "pct_of_copy": pct,
            "copy_GB_per_s": ref, "check": check,
            "cotan_over_jax": med["cotan"] / med["jax"] if "jax" in med else None,
            "goal": ">= 70% of copy"}


def section_mlp(run, env):
    rng = np.random.default_rng(2)
    f32 = np.float32
    params = (rng.standard_normal((784, 512)).astype(f32) * f32(0.05), np.zeros(512, f32),
              rng.standard_normal((512, 10)).astype(f32) * f32(0.05), np.zeros(10, f32))
    x = rng.standard_normal((4096, 784)).astype(f32)
    y = np.eye(10, dtype=f32)[rng.integers(0, 10, 4096)]
    out = {}
    variant = None
    for loss in (mlp_loss, mlp_loss_mse):     # the softmax one first; MSE if cotan refuses it
        try:
            cl = env.cotan.jit(loss, backend="cuda")
            cg = env.cotan.jit(env.cotan.grad(loss, argnums=(0, 1, 2, 3)), backend="cuda")
            dargs = tuple(env.put(a) for a in params + (x, y))
            lv = float(np.asarray(cl(*dargs)))
            gv = cg(*dargs)
            env.cotan_sync(gv)
            variant = loss.__name__
            break
        except Exception as e:  # noqa: BLE001
            out[f"{loss.__name__}_error"] = f"{type(e).__name__}: {e}"[:1500]
    if variant is None:
        raise RuntimeError("cotan compiled neither MLP loss for cuda")
    out["variant"] = variant
    want = float(loss(*(a.astype(np.float64) for a in params + (x, y))))
    out["loss_check"] = {"cotan": lv, "float64_numpy": want, "rel_err": abs(lv - want) / abs(want)}
    loss_impls = {"cotan": (lambda: cl(*dargs), env.cotan_sync)}
    grad_impls = {"cotan": (lambda: cg(*dargs), env.cotan_sync)}
    if env.jax is not None:
        jax, jnp = env.jax, env.jnp

        def jloss(w1, b1, w2, b2, xx, yy):
            h = jnp.tanh(xx @ w1 + b1)
            logits = h @ w2 + b2
            if variant == "mlp_loss":
                lse = jax.nn.logsumexp(logits, axis=1, keepdims=True)
                return -jnp.mean(jnp.sum(yy * (logits - lse), axis=1))
            return jnp.mean((logits - yy) ** 2)

        jl = jax.jit(jloss)
        jg = jax.jit(jax.grad(jloss, argnums=(0, 1, 2, 3)))
        jargs = tuple(env.jput(a) for a in params + (x, y))
        loss_impls["jax"] = (lambda: jl(*jargs), env.jax_sync)
        grad_impls["jax"] = (lambda: jg(*jargs), env.jax_sync)
        jgv = jg(*jargs)
        out["grad_rel_err_vs_jax"] = max(rel_err(np.asarray(a), np.asarray(b))
                                         for a, b in zip(env.cotan.tree_util.tree_flatten(gv)[0],
                                                         jgv))
    med_l, nl = interleaved(loss_impls, rounds=9, inner=10, run=run)
    med_g, ng = interleaved(grad_impls, rounds=9, inner=10, run=run)
    out.update({"loss_seconds": med_l, "grad_seconds": med_g, "rounds": [nl, ng],
                "gemm_backend": env.rt.gemm_backend, "goal": "<= 1.2x JAX",
                "loss_cotan_over_jax": med_l["cotan"] / med_l["jax"] if "jax" in med_l else None,
                "grad_cotan_over_jax": med_g["cotan"] / med_g["jax"] if "jax" in med_g else None})
    return out


def section_loop(run, env):
    x = np.random.default_rng(3).uniform(-1, 1, 1 << 16).astype(np.float32)
    cf = env.cotan.jit(loop1000, backend="cuda")
    xd = env.put(x)
    impls = {"cotan": (lambda: cf(xd), env.cotan_sync)}
    want = loop1000(x.copy())
    check = {"rel_err_vs_numpy": rel_err(np.asarray(cf(xd)), want)}
    if env.jax is not None:
        jax = env.jax
        jf = jax.jit(lambda a: jax.lax.fori_loop(0, 1000, lambda i, v: v * 0.999 + 0.001, a))
        xj = env.jput(x)
        impls["jax"] = (lambda: jf(xj), env.jax_sync)
    med, n = interleaved(impls, rounds=5, inner=1, run=run)
    per_step = {k: v / 1000 for k, v in med.items()}
    return {"seconds_per_call": med, "seconds_per_step": per_step, "rounds": n, "check": check,
            "cotan_over_jax": med["cotan"] / med["jax"] if "jax" in med else None,
            "note": "2^16 float32; jax runs the loop as an XLA while loop on the device"}


def section_overhead(run, env):
    x = np.ones(1, np.float64)
    cf = env.cotan.jit(add1, backend="cuda")
    xd = env.put(x)
    impls = {"cotan": (lambda: cf(xd), env.cotan_sync)}
    if env.jax is not None:
        jf = env.jax.jit(lambda a: a + 1.0)
        xj = env.jput(x)
        impls["jax"] = (lambda: jf(xj), env.jax_sync)
    if env.cp is not None:
        xc = env.cp.asarray(x)
        impls["cupy"] = (lambda: xc + 1.0, env.cupy_sync)
    async_med, n = interleaved(impls, rounds=7, inner=500, run=run)
    sync_impls = {k: ((lambda c=c, s=s: s(c())), lambda out: None) for k, (c, s) in impls.items()}
    sync_med, _ = interleaved(sync_impls, rounds=7, inner=200, run=run)
    return {"async_us_per_call": {k: v * 1e6 for k, v in async_med.items()},
            "sync_us_per_call": {k: v * 1e6 for k, v in sync_med.items()}, "rounds": n,
            "note": "async: 500 calls then one wait; sync: each call waited for"}


def section_meta(run, env):
    m = run.results["meta"]
    m["python"] = platform.python_version()
    m["host"] = platform.node()
    try:
        m["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:  # noqa: BLE001
        m["nvidia_smi"] = str(e)
    m["gpu"] = env.rt.device_name
    m["arch"] = env.rt.arch
    import pycuda
    m["pycuda"] = pycuda.VERSION_TEXT
    if env.jax is not None:
        m["jax"] = env.jax.__version__
    if env.cp is not None:
        m["cupy"] = env.cp.__version__
    m["optional_missing"] = env.errors
    try:
        m["cotan_commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return {}


# ---------------------------------------------------------------- report

def _fmt_t(t):
    if t is None:
        return "-"
    return f"{t * 1e3:.3f} ms" if t >= 1e-4 else f"{t * 1e6:.1f} us"


def markdown(results):
    s = results["sections"]
    m = results["meta"]
    lines = [f"# cotan GPU check, {m.get('started', '?')}", "",
             f"GPU: {m.get('gpu', '?')} ({m.get('arch', '?')}), {m.get('nvidia_smi', '')}; "
             f"python {m.get('python', '?')}, pycuda {m.get('pycuda', '?')}, "
             f"jax {m.get('jax', '-')}, cupy {m.get('cupy', '-')}; cotan {m.get('cotan_commit', '?')}",
             ""]
    t = s.get("tests")
    if t:
        lines.append(f"cuda tests: {t.get('summary') or t.get('error') or t.get('skipped')}")
        lines.append("")
    lines += ["| benchmark | cotan | JAX | CuPy | cotan / JAX | notes |",
              "| --- | --- | --- | --- | --- | --- |"]

    def row(name, r, key="seconds", extra=""):
        if not r:
            return
        if not r.get("ok"):
            lines.append(f"| {name} | failed | | | | {(r.get('error') or r.get('skipped', ''))[:120]} |")
            return
        v = r.get(key, {})
        ratio = (v["cotan"] / v["jax"]) if "cotan" in v and "jax" in v else None
        lines.append(f"| {name} | {_fmt_t(v.get('cotan'))} | {_fmt_t(v.get('jax'))} | "
                     f"{_fmt_t(v.get('cupy'))} | {'-' if ratio is None else f'{ratio:.2f}x'} | "
                     f"{extra} |")

    c = s.get("copy")
    if c and c.get("ok"):
        g = c["GB_per_s"]
        row("D2D copy 2^26 f32", c, extra=f"{', '.join(f'{k} {v:.0f} GB/s' for k, v in g.items())}")
    else:
        row("D2D copy 2^26 f32", c)
    for key, label in (("fused_f32", "fused 2^26 f32"), ("fused_f64", "fused 2^26 f64"),
                       ("reduction", "sum(exp(x)*x) 2^26 f32")):
        r = s.get(key)
        if r and r.get("ok"):
            p = r["pct_of_copy"]
            row(label, r, extra=", ".join(f"{k} {p[k]:.0f}% of copy" for k in p))
        else:
            row(label, r)
    r = s.get("mlp")
    if r and r.get("ok"):
        row(f"MLP jit(loss) [{r['variant']}]", r, "loss_seconds", r.get("gemm_backend") or "")
        row("MLP jit(grad(loss))", r, "grad_seconds")
    else:
        row("MLP", r)
    r = s.get("loop")
    if r and r.get("ok"):
        row("1000-step loop, per step", r, "seconds_per_step", "jax: fori_loop")
    else:
        row("1000-step loop", r)
    r = s.get("overhead")
    if r and r.get("ok"):
        a = {k: v * 1e-6 for k, v in r["async_us_per_call"].items()}
        b = {k: v * 1e-6 for k, v in r["sync_us_per_call"].items()}
        row("x + 1 call (async)", {"ok": True, "v": a}, "v")
        row("x + 1 call (waited)", {"ok": True, "v": b}, "v")
    else:
        row("x + 1 call", r)
    failed = [k for k, v in s.items() if not v.get("ok")]
    if failed:
        lines += ["", "failed or skipped sections: " + ", ".join(failed)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "/tmp/gpu_check_out")
    ap.add_argument("--deadline", type=float, default=480.0, help="global limit, seconds")
    ap.add_argument("--tests-budget", type=float, default=200.0,
                    help="at most this long for pytest -m cuda")
    ap.add_argument("--plan", action="store_true", help="print the sections and exit")
    ap.add_argument("--no-tests", action="store_true")
    args = ap.parse_args(argv)
    if args.plan:
        for name, what in SECTIONS:
            print(f"{name:10s} {what}")
        print(f"writes gpu_check.json, gpu_check.md, cuda_tests.log to {args.out}")
        return 0
    run = Run(args.out, args.deadline)
    run.watchdog()
    run.section("install", lambda: section_install(run))
    run.section("smoke", lambda: section_smoke(run))
    if not args.no_tests:
        # leave the benchmarks about 3 minutes
        budget = max(30.0, min(args.tests_budget, run.left() - 180))
        run.section("tests", lambda: section_tests(run, budget), need_s=40)
    env_box = {}

    def make_env():
        env_box["env"] = Env()
        section_meta(run, env_box["env"])
        return {"optional_missing": env_box["env"].errors}

    run.section("environment", make_env)
    env = env_box.get("env")
    if env is not None:
        run.section("copy", lambda: section_copy(run, env), need_s=15)
        run.section("fused_f32", lambda: section_fused(run, env, np.float32), need_s=25)
        run.section("fused_f64", lambda: section_fused(run, env, np.float64), need_s=25)
        run.section("reduction", lambda: section_reduction(run, env), need_s=20)
        run.section("mlp", lambda: section_mlp(run, env), need_s=40)
        run.section("loop", lambda: section_loop(run, env), need_s=25)
        run.section("overhead", lambda: section_overhead(run, env), need_s=15)
    run.done = True
    run.write()
    print(markdown(run.results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
