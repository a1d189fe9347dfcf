"""A pytest plugin for bench/gpu_check.py: keeps every Nth collected test
(`COTAN_SHARD=k/N`), so the cuda tests run as N processes side by side
(their time is mostly nvcc compiling kernels on the CPU).  Loaded with
`-p gpu_shard` with bench/ on PYTHONPATH; nothing else imports it."""

import os


def pytest_collection_modifyitems(config, items):
    spec = os.environ.get("COTAN_SHARD")
    if not spec:
        return
    k, n = (int(v) for v in spec.split("/"))
    keep = [it for i, it in enumerate(items) if i % n == k]
    drop = [it for i, it in enumerate(items) if i % n != k]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
