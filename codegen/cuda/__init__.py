"""The cuda backend: typed program → CUDA C kernels + a Python host driver.

See runtime_api.py for what the generated driver calls.  Must not import
pycuda at import time (only when a cuda function is compiled for a GPU).
"""
