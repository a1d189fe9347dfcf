"""A function with a loop, and its gradient, to be called from C.

`relax` runs 50 steps of a nonlinear relaxation y <- y + h * k * sin(y)
from the starting point x and returns the energy sum(y**2) at the end;
`grad_relax` is its gradient with respect to x (reverse mode through the
loop).  The Makefile compiles both to shared objects with

    python -m cotan aot model.py:relax      --arg f64[8] --arg f64[8] -o librelax.so
    python -m cotan aot model.py:grad_relax --arg f64[8] --arg f64[8] -o libgrad_relax.so

and main.c calls them.
"""

import numpy as np

import cotan


def relax(x, k):
    y = x
    for step in range(50):
        y = y + 0.05 * k * np.sin(y)
    return np.sum(y * y)


grad_relax = cotan.grad(relax)


if __name__ == "__main__":
    # the eager values main.c should print
    x = np.linspace(0.1, 1.5, 8)
    k = np.linspace(1.0, 2.0, 8)
    print("relax", relax(x, k))
    print("grad_relax", *grad_relax(x, k))
