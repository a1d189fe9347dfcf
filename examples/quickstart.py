"""cotan quick start: normalize, differentiate, batch and compile a plain
NumPy function, and read the code cotan writes for each step.

Run:  python examples/quickstart.py
"""

import numpy as np

import cotan


def loss(w, x, y):
    """Mean squared error of a tiny model with a data-dependent branch."""
    pred = np.tanh(x @ w)
    err = pred - y
    if err.max() > 1.0:          # plain Python control flow on array values
        err = np.clip(err, -1.0, 1.0)
    return (err ** 2).mean()


def main():
    rng = np.random.default_rng(0)
    w = rng.normal(size=3)
    x = rng.normal(size=(8, 3))
    y = rng.normal(size=8)

    print("== core form: one primitive call per statement ==")
    core = cotan.normalize(loss)
    print(cotan.source(core))
    print("loss          :", loss(w, x, y))
    print("core form says:", core(w, x, y))

    step = 1
    for name in ("grad", "vmap", "jit"):
        if not hasattr(cotan, name):
            print(f"(cotan.{name} is not available in this build)")
    if hasattr(cotan, "grad"):
        step += 1
        dloss = cotan.grad(loss)
        print(f"\n== {step}. gradient, generated as Python source ==")
        print(cotan.source(dloss))
        print("grad:", dloss(w, x, y))
    if hasattr(cotan, "vmap") and hasattr(cotan, "grad"):
        step += 1
        per_example = cotan.vmap(cotan.grad(loss), in_axes=(None, 0, 0))
        print(f"\n== {step}. per-example gradients with vmap(grad(loss)) ==")
        print(per_example(w, x[:, None, :], y[:, None]))
    if hasattr(cotan, "jit"):
        step += 1
        fast = cotan.jit(loss)
        print(f"\n== {step}. compiled with LLVM ==")
        print("jit(loss):", fast(w, x, y))


if __name__ == "__main__":
    main()
