"""`cotan.pmap`: the public face of mapping a function over devices.

Owns pmap's argument handling (splitting the mapped arguments along
`in_axes`, one slice per device, broadcasting the others and the static
ones, stacking the results along `out_axes`) and the device queries
`devices`, `local_devices`, `device_count`, `local_device_count`.  Running
the shards is runtime/pmap_cpu.py's (one thread per device, the program
cut at collectives into compiled segments); the collectives themselves are
runtime/collectives.py's.  With `cotan.distributed.initialize()` a pmap
spans every process: each maps over its local devices and the collectives
meet across processes (cotan/distributed.py).

Not done here: the xla backend's pmap (one executable for N devices, its
collectives lowered to stablehlo.all_reduce/all_gather/collective_permute)
and multi-GPU cuda (NCCL); `backend='xla'`/`'cuda'` raise MissingRuleError
saying so.  The cuda path would slot in beside pmap_cpu: a per-device
segment runner whose collectives call NCCL instead of AxisGroup.exchange.
"""

import numpy as np

from .errors import MissingRuleError, ShapeError
from .runtime import collectives  # noqa: F401  (registers the collectives)
from .runtime.pmap_cpu import (AxisGroup, SegmentedProgram, cpu_devices, local_device_count as
                               _local_count, run_shards)

__all__ = ["pmap", "devices", "local_devices", "device_count", "local_device_count"]


def devices(backend=None):
    """Every device of every process (the cpu devices; see cotan.distributed)."""
    _check_backend("devices", backend)
    return cpu_devices()


def local_devices(backend=None):
    """This process's devices."""
    _check_backend("local_devices", backend)
    return cpu_devices(local_only=True)


def device_count(backend=None):
    return len(devices(backend))


def local_device_count(backend=None):
    _check_backend("local_device_count", backend)
    return _local_count()


def _check_backend(what, backend):
    if backend not in (None, "cpu"):
        raise MissingRuleError(what, backend, "only the cpu backend maps over several devices so "
                               "far (the xla and cuda pmaps are not built yet); use backend='cpu'")


class _Unnamed:
    """The axis of a pmap without axis_name: no collective can name it."""

    def __repr__(self):
        return "<unnamed pmap axis>"


def pmap(fun, axis_name=None, in_axes=0, out_axes=0, static_broadcasted_argnums=(),
         devices=None, backend=None, *, jit=True):
    """Map `fun` over the leading axis (`in_axes`) of its arguments, one
    slice per device, all slices running in parallel.

    Collectives (`cotan.lax.psum`, ...) over `axis_name` meet across the
    slices.  `in_axes`/`out_axes`: an int or None, or a tuple with one entry
    per positional argument (pytree prefixes allowed).
    `static_broadcasted_argnums`: arguments passed to every slice as they
    are (compile-time constants).  `devices`: the devices to use (default:
    the first N local cpu devices, N the mapped size).  `jit=False` runs the
    slices as plain Python (same numbers, for debugging).  Returns the
    results stacked along `out_axes` as NumPy arrays.
    """
    if not callable(fun):
        raise TypeError(f"pmap: expected a function, got {type(fun).__name__}")
    _check_backend("pmap", backend)
    if isinstance(static_broadcasted_argnums, int):
        static_broadcasted_argnums = (static_broadcasted_argnums,)
    return PmapFunction(fun, axis_name, in_axes, out_axes, tuple(static_broadcasted_argnums),
                        devices, jit)


class PmapFunction:
    def __init__(self, fun, axis_name, in_axes, out_axes, statics, devs, jit):
        self._fun = fun
        self.__wrapped__ = fun
        self.__name__ = getattr(fun, "__name__", "fn")
        self.__doc__ = getattr(fun, "__doc__", None)
        self.axis_name = _Unnamed() if axis_name is None else axis_name
        self.in_axes = tuple(in_axes) if isinstance(in_axes, list) else in_axes
        self.out_axes = out_axes
        self.statics = statics
        self.devices = list(devs) if devs is not None else None
        self.jit = jit
        self._program = None

    def __repr__(self):
        return f"<cotan.pmap of {self.__name__}>"

    # -- the per-shard program
    def program(self):
        """What each shard runs: `fun`'s SegmentedProgram (runtime/pmap_cpu.py;
        one compiled segment when `fun` has no collectives)."""
        if self._program is None and isinstance(self._fun, PmapFunction):
            # nested pmap: each outer shard runs the inner pmap (compiled itself)
            inner = self._fun
            self._program = lambda args: inner(*args)
        if self._program is None:
            from .autodiff.normalize import normalize_function
            core = normalize_function(self._fun)
            params = core.params
            # without collectives the program is one segment: jit of the body
            prog = SegmentedProgram(core, [params[i] for i in self.statics if i < len(params)])
            self._program = prog.run
        return self._program

    def __call__(self, *args):
        name = self.__name__
        specs = self._specs(args)
        n = _mapped_size(name, args, specs)
        count = len(self.devices) if self.devices is not None else _local_count()
        if self.devices is not None and n != count:
            raise ShapeError(f"pmap of {name!r}: the mapped axis has size {n} but devices= "
                             f"lists {count} devices; give one device per slice")
        if n > count:
            raise ShapeError(f"pmap of {name!r}: the mapped axis has size {n} but this process "
                             f"has {count} cpu devices; map over at most {count} slices, or set "
                             f"COTAN_NUM_DEVICES={n} to run more devices than cores")
        shards = [[] for _ in range(n)]
        for a, spec in zip(args, specs):
            parts = _split(name, a, spec, n)
            for k in range(n):
                shards[k].append(parts[k])
        from .distributed import communicator
        from .runtime.collectives import current_frames
        # an outermost pmap spans the processes; a nested one lives inside
        # one shard of it, so in this process
        comm = communicator() if not current_frames() else None
        group = AxisGroup(self.axis_name, n, comm)
        if self.jit:
            prog = self.program()
            calls = [lambda s=s: prog(s) for s in shards]
        else:
            calls = [lambda s=s: self._fun(*s) for s in shards]
        results = run_shards(calls, group, self.axis_name)
        return _stack(name, results, self.out_axes)

    def _specs(self, args):
        ia = self.in_axes
        if isinstance(ia, tuple):
            if len(ia) != len(args):
                raise ShapeError(f"pmap of {self.__name__!r}: in_axes has {len(ia)} entries for "
                                 f"{len(args)} positional arguments; give one per argument")
            specs = list(ia)
        else:
            specs = [ia] * len(args)
        for i in self.statics:
            if i < len(specs):
                specs[i] = None
        return specs


def _leaves(x, spec, out, path="argument"):
    if spec is None:
        return
    if isinstance(spec, (tuple, list, dict)) and not isinstance(x, (tuple, list, dict)):
        raise ShapeError(f"pmap: in_axes entry {spec!r} is a container but {path} is not")
    if isinstance(spec, dict):
        for k, s in spec.items():
            _leaves(x[k], s, out, f"{path}[{k!r}]")
        return
    if isinstance(spec, (tuple, list)):
        for k, (e, s) in enumerate(zip(x, spec)):
            _leaves(e, s, out, f"{path}[{k}]")
        return
    if isinstance(x, dict):
        for k, v in x.items():
            _leaves(v, spec, out, f"{path}[{k!r}]")
        return
    if isinstance(x, (tuple, list)):
        for k, v in enumerate(x):
            _leaves(v, spec, out, f"{path}[{k}]")
        return
    out.append((path, x, spec))


def _mapped_size(name, args, specs):
    sizes = []
    for i, (a, s) in enumerate(zip(args, specs)):
        leaves = []
        _leaves(a, s, leaves, f"argument {i}")
        for path, leaf, axis in leaves:
            shape = np.shape(leaf)
            if not -len(shape) <= axis < len(shape):
                raise ShapeError(f"pmap of {name!r}: in_axes {axis} for {path} of shape "
                                 f"{shape}, which has no axis {axis}; use in_axes=None for "
                                 "arguments that are not mapped")
            sizes.append((path, shape[axis]))
    if not sizes:
        raise ShapeError(f"pmap of {name!r}: no argument is mapped (in_axes is None for all); "
                         "map at least one")
    if len({s for _, s in sizes}) != 1:
        listing = ", ".join(f"{p}: {s}" for p, s in sizes)
        raise ShapeError(f"pmap of {name!r}: the mapped axes have different sizes ({listing})")
    return sizes[0][1]


def _split(name, x, spec, n):
    """`x` cut into n slices along `spec` (None: the same x for every slice)."""
    if spec is None:
        return [x] * n
    if isinstance(spec, dict) or (isinstance(x, dict) and not isinstance(spec, (tuple, list))):
        keys = list(x)
        parts = {k: _split(name, x[k], spec[k] if isinstance(spec, dict) else spec, n)
                 for k in keys}
        return [{k: parts[k][i] for k in keys} for i in range(n)]
    if isinstance(x, (tuple, list)):
        sub = spec if isinstance(spec, (tuple, list)) else [spec] * len(x)
        parts = [_split(name, e, s, n) for e, s in zip(x, sub)]
        return [type(x)(p[i] for p in parts) for i in range(n)]
    arr = np.moveaxis(np.asarray(x), spec, 0)
    out = []
    for k in range(n):
        # slices of a C-ordered leading axis are contiguous: handed over as
        # read-only views (the shards must not write into the caller's array)
        v = arr[k] if arr[k].flags.c_contiguous else np.array(arr[k], order="C")
        if v.base is not None:
            v = v.view()
            v.flags.writeable = False
        out.append(v)
    return out


def _stack(name, results, spec):
    first = results[0]
    if isinstance(first, dict):
        return {k: _stack(name, [r[k] for r in results],
                          spec[k] if isinstance(spec, dict) else spec) for k in first}
    if isinstance(first, (tuple, list)):
        sub = spec if isinstance(spec, (tuple, list)) else [spec] * len(first)
        return type(first)(_stack(name, [r[i] for r in results], s)
                           for i, s in enumerate(sub))
    if first is None:
        return None
    if spec is None:
        for k, r in enumerate(results[1:], 1):
            if not np.array_equal(np.asarray(r), np.asarray(first), equal_nan=True):
                raise ShapeError(f"pmap of {name!r}: out_axes=None for an output that differs "
                                 f"between slices (slice 0 and slice {k}); give an axis, or "
                                 "make it the same on every slice (e.g. psum it)")
        return np.asarray(first)
    return np.stack([np.asarray(r) for r in results], axis=spec)
