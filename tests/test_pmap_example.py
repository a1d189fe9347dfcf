"""examples/data_parallel.py: 50 steps of pmap(value_and_grad) + pmean over 4
devices end at the parameters of single-device training (to 1e-12), with
the loss going down."""

import importlib.util
import os
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example():
    spec = importlib.util.spec_from_file_location(
        "data_parallel", os.path.join(ROOT, "examples", "data_parallel.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_data_parallel_training_equals_single_device(monkeypatch):
    monkeypatch.setenv("COTAN_NUM_DEVICES", "4")
    ex = load_example()
    params, x, y = ex.data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)     # every segment compiled
        p_par, l_par = ex.train_parallel(params, x, y)
    p_one, l_one = ex.train_single(params, x, y)
    assert len(l_par) == ex.STEPS == 50
    for a, b in zip(p_par, p_one):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(l_par, l_one, rtol=1e-12)
    assert l_par[-1] < 0.5 * l_par[0]
