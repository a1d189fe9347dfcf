"""The `cotan` command line (`python -m cotan ...`).

Owns argument parsing and the subcommands; each subcommand calls the
public API and nothing else.  Subcommands:

    aot MODULE:FUNCTION --arg f64[16] --arg f64[16,3] [-o libf.so]
        [--name f] [--cpu host|x86-64-v2|...] [--features +avx2] [--grad]
        [--threads N]

MODULE is a path to a .py file or a dotted module name; FUNCTION may name
a plain function or a transformed one the module defines (`df =
cotan.grad(f)`), or `--grad` differentiates it (first argument).  Each
`--arg` is a dtype and a shape: `f64[16,3]`, `f32[8]`, `i64[]` or `f64`
(a scalar); dtypes are NumPy names or short forms (f64 f32 i64 i32 i16 i8
u8 b1/bool).
"""

import argparse
import importlib
import importlib.util
import os
import re
import sys

import numpy as np

_SHORT = {"f64": "float64", "f32": "float32", "i64": "int64", "i32": "int32",
          "i16": "int16", "i8": "int8", "u64": "uint64", "u32": "uint32", "u16": "uint16",
          "u8": "uint8", "b1": "bool", "bool": "bool"}


def parse_arg_spec(text):
    """`f64[16,3]` -> cotan.ShapeDtype((16, 3), float64)."""
    from .aot import ShapeDtype
    m = re.fullmatch(r"\s*([A-Za-z0-9_]+)\s*(?:\[([0-9,\s]*)\])?\s*", text)
    if not m:
        raise ValueError(f"--arg {text!r}: write a dtype and a shape, e.g. f64[16,3], f32[8] "
                         "or f64 (a scalar)")
    dtype_name, dims = m.group(1), m.group(2) or ""
    try:
        dtype = np.dtype(_SHORT.get(dtype_name, dtype_name))
    except TypeError:
        raise ValueError(f"--arg {text!r}: unknown dtype {dtype_name!r} (use one of "
                         f"{', '.join(_SHORT)} or a NumPy dtype name)") from None
    shape = tuple(int(d) for d in dims.replace(" ", "").split(",") if d)
    return ShapeDtype(shape, dtype)


def load_function(target):
    """The object `MODULE:FUNCTION` names (MODULE a .py path or dotted name)."""
    if ":" not in target:
        raise ValueError(f"{target!r}: write MODULE:FUNCTION, e.g. model.py:loss")
    module_text, attr = target.rsplit(":", 1)
    if module_text.endswith(".py") or os.sep in module_text:
        path = os.path.abspath(module_text)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{module_text}: no such file")
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)      # the module's own imports
        mod_name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        # registered before running it: inspect.getsource finds functions
        # through sys.modules[fn.__module__]
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_text)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{module_text} has no {attr!r}") from None
    return obj


def _aot(ns):
    import cotan
    specs = [parse_arg_spec(a) for a in ns.arg]     # before running the module: fail fast
    fun = load_function(ns.target)
    if ns.grad:
        fun = cotan.grad(fun)
    lib = cotan.aot.compile(fun, tuple(specs), output=ns.output, name=ns.name, cpu=ns.cpu,
                            features=ns.features, threads=ns.threads)
    print(f"wrote {lib.path}")
    print(f"wrote {lib.header}")
    for side, leaves in (("input", lib.inputs), ("output", lib.outputs)):
        for k, leaf in enumerate(leaves):
            print(f"  {side} {k}: {leaf.path} {leaf.dtype.name}{list(leaf.shape)}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cotan",
                                     description="cotan command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("aot", help="compile a function to a shared object with a C header")
    p.add_argument("target", help="MODULE:FUNCTION (MODULE a .py path or a dotted name)")
    p.add_argument("--arg", action="append", default=[], metavar="DTYPE[SHAPE]",
                   help="one per argument, in order: f64[16,3], f32[8], i64 (scalar)")
    p.add_argument("-o", "--output", default=None,
                   help="the shared object to write (default lib<name>.so)")
    p.add_argument("--name", default=None, help="the C entry point (default: function name)")
    p.add_argument("--cpu", default="host",
                   help="target CPU: host (default) or an LLVM CPU name such as x86-64-v2")
    p.add_argument("--features", default=None, help="LLVM target features, e.g. +avx2,+fma")
    p.add_argument("--grad", action="store_true",
                   help="compile cotan.grad(FUNCTION) (gradient in the first argument)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for large elementwise loops (default 1: none started)")
    ns = parser.parse_args(argv)
    try:
        if ns.command == "aot":
            return _aot(ns)
    except Exception as ex:   # one line for the terminal, not a traceback
        from .errors import CotanError
        if os.environ.get("COTAN_TRACEBACK") or not isinstance(
                ex, (CotanError, ValueError, TypeError, AttributeError, FileNotFoundError)):
            raise
        print(f"cotan {ns.command}: {type(ex).__name__}: {ex}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
