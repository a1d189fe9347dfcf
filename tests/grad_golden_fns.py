"""Functions whose generated gradients tests/test_grad_golden.py pins."""

import numpy as np


def scale(a):
    return a * 2.0


def golden_loop(x):
    s = 0.0
    for i in range(3):
        s = s + np.sin(x[i]) * x[i]
    return s


def golden_branch(x):
    if np.sum(x) > 0:
        y = x * x
    else:
        y = np.exp(x)
    return np.sum(y)


def golden_helper(x, w):
    h = np.tanh(scale(x) @ w)
    return np.sum(h ** 2)
