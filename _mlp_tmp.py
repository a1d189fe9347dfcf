import time, numpy as np, cotan, sys
sys.path.insert(0, 'bench')
from bench_jit import mlp_loss, median_time
rng = np.random.default_rng(0)
params = {"w1": rng.normal(size=(784, 512)) * 0.05, "b1": np.zeros(512),
          "w2": rng.normal(size=(512, 10)) * 0.05, "b2": np.zeros(10)}
xb = rng.normal(size=(256, 784)); yb = np.eye(10)[rng.integers(0, 10, 256)]
jl = cotan.jit(mlp_loss)
t0=time.perf_counter(); jg = cotan.jit(cotan.grad(mlp_loss)); r=jg(params, xb, yb); print("compile grad", time.perf_counter()-t0)
g = cotan.grad(mlp_loss)(params, xb, yb)
for k in g: np.testing.assert_allclose(r[k], g[k], rtol=1e-8, atol=1e-12)
print("np", median_time(mlp_loss, params, xb, yb))
print("jit", median_time(jl, params, xb, yb))
print("jitgrad", median_time(jg, params, xb, yb))
print("gemm only", median_time(lambda a,b: a@b, xb, params["w1"]))
print(jl.lower(params, xb, yb).as_text("typed"))
