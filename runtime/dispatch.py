"""Dispatch of jitted functions: signature → compiled entry, cheap calls.

Owns `JitFunction` (what `cotan.jit` returns): it resolves a call's
signature (pytree structure, dtypes, shapes, static values), compiles on a
miss (in-process cache, then the disk cache, then the LLVM backend) and
calls the native entry

    int32 cotan_entry(void **in_ptrs, int64 *in_shapes, void **out_ptrs,
                      const char **err)

with data pointers read straight from the arrays -- or, where the entry
has one, `cotan_entry_scratch` (the same plus `void **scratch`) with
scratch records (arena, reverse-mode stack buffers) kept across calls in a
per-entry pool, one block per call in flight, at most `scratch_limit()`
bytes kept (`JitFunction.release_scratch`, `release_all_scratch`; freed
when the function dies).  Signatures whose arguments are pytrees of
ndarrays and Python scalars are handed to the C fast path
(runtime/fastcall.py) as pre-order node lists.  A nonzero status becomes
`cotan.errors.ShapeError` (or IndexError / AssertionError) with the native
message.  Must not build IR (codegen/).
"""

import ctypes
import functools
import hashlib
import inspect
import threading
import weakref

import numpy as np

from ..errors import ShapeError, CotanError, LinAlgError
from ..codegen.abstract import ShapedArray
from ..codegen.llvm.emit import leaves_of
from . import disk_cache, fastcall
from .. import tree_util

#: the C extension of the fast call path (runtime/fastcall.py), or None
_FAST = fastcall.load()
_Base = _FAST.Dispatcher if _FAST is not None else object

_PROTO = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p)
_SCRATCH_PROTO = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_COUNT_PROTO = ctypes.CFUNCTYPE(ctypes.c_int64)
_libc_free = ctypes.CDLL(None).free
_libc_free.argtypes = [ctypes.c_void_p]
_libc_free.restype = None

#: scratch blocks kept per compiled entry (and per path: the C fast path
#: keeps its own pool) -- one per call in flight
_POOL = 8


def scratch_limit():
    """Bytes of scratch memory (arena and reverse-mode stacks) a compiled
    entry keeps between calls, over all its kept blocks: an eighth of the
    physical memory (COTAN_SCRATCH_KEEP_MB overrides it; 0 keeps nothing).
    Why that much: a gradient at 1e7 float64 touches ~0.9 GB of scratch, and
    faulting it in afresh doubled its time (3.3 s -> 1.4 s kept).  A call
    whose scratch is larger still runs; its memory is freed when it
    returns.  `JitFunction.release_scratch()` gives kept memory back."""
    import os
    got = os.environ.get("COTAN_SCRATCH_KEEP_MB")
    if got is not None:
        try:
            return int(float(got) * (1 << 20))
        except ValueError:
            pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8
    except (ValueError, OSError, AttributeError):
        return 1 << 30


class _ScratchPool:
    """Scratch records of one compiled entry kept across calls.

    The entry (`cotan_entry_scratch`, codegen/llvm/emit.py) reads its arena
    and stack buffers from `n` records {ptr, capacity} and leaves them there
    (grown if needed) when it returns: reusing a block skips malloc/free of
    fresh memory and, above all, the page faults of touching it again on
    every call.  Each call in flight takes a block of its own (threads,
    and a jitted function called again from a print callback), so no two
    calls share memory; a block goes back to the pool while the pool keeps
    at most `limit` bytes, else it is freed."""

    def __init__(self, n):
        self.n = n
        self.blocks = []
        self.limit = scratch_limit()
        self._lock = threading.Lock()

    def take(self):
        try:
            return self.blocks.pop()
        except IndexError:
            return (ctypes.c_void_p * (2 * self.n))()

    def give(self, blk):
        nbytes = sum(blk[2 * k + 1] or 0 for k in range(self.n))
        with self._lock:
            kept = sum(sum(b[2 * k + 1] or 0 for k in range(self.n)) for b in self.blocks)
            if len(self.blocks) < _POOL and kept + nbytes <= self.limit:
                self.blocks.append(blk)
                return
        self._free(blk)

    def _free(self, blk):
        for k in range(self.n):
            if blk[2 * k]:
                _libc_free(blk[2 * k])
                blk[2 * k] = None
                blk[2 * k + 1] = None

    def kept(self):
        return sum(sum(b[2 * k + 1] or 0 for k in range(self.n)) for b in list(self.blocks))

    def release(self):
        freed = 0
        while True:
            try:
                blk = self.blocks.pop()
            except IndexError:
                return freed
            freed += sum(blk[2 * k + 1] or 0 for k in range(self.n))
            self._free(blk)

    def __del__(self):
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _scratch_entry(native):
    """(address of cotan_entry_scratch, its number of records), or (0, 0)
    for an entry compiled without one (an older disk-cache entry)."""
    from ..codegen.llvm.emit import SCRATCH_ENTRY, SCRATCH_RECORDS
    module = getattr(native, "native", native)
    try:
        address = module.address(SCRATCH_ENTRY)
        count = _COUNT_PROTO(module.address(SCRATCH_RECORDS))()
    except (KeyError, AttributeError):
        return 0, 0
    return address, int(count)
_SCALAR_TYPES = {bool: np.bool_, int: np.int64, float: np.float64}


def _slow_data_ptr(a):
    return a.__array_interface__["data"][0]


def _make_data_ptr():
    """Read `PyArrayObject.data` (offset 16 after the object header) directly:
    `__array_interface__` costs ~1-2 us per array, this ~0.1 us.  Checked
    against the interface once; falls back to it if the layout differs."""
    reader = ctypes.c_void_p.from_address
    probe = np.arange(3.0)[1:]

    def fast(a):
        return reader(id(a) + 16).value
    try:
        if fast(probe) == _slow_data_ptr(probe):
            return fast
    except Exception:  # pragma: no cover
        pass
    return _slow_data_ptr


_data_ptr = _make_data_ptr()


class _Compiled:
    """A native entry plus its calling convention, for one signature."""

    def __init__(self, address, out_aval, n_in, n_out, keep):
        self.keep = keep
        self.fn = _PROTO(address)
        self.scratch_address, self.n_scratch = _scratch_entry(keep)
        if self.scratch_address:
            self.scratch_fn = _SCRATCH_PROTO(self.scratch_address)
            self.scratch = _ScratchPool(self.n_scratch)
        else:
            self.scratch_fn = self.scratch = None
        self.out_aval = out_aval
        self.out_leaves = []
        leaves_of(out_aval, self.out_leaves)
        self.n_in = n_in
        self.in_ptrs = (ctypes.c_void_p * max(1, n_in))()
        self.out_ptrs = (ctypes.c_void_p * max(1, len(self.out_leaves)))()
        self.err = ctypes.c_char_p()
        self.a_in = ctypes.addressof(self.in_ptrs)
        self.a_out = ctypes.addressof(self.out_ptrs)
        self.a_err = ctypes.addressof(self.err)
        self.dims = (ctypes.c_int64 * 64)()
        self.a_dims = ctypes.addressof(self.dims)

        # the buffers above serve one call at a time: ctypes releases the GIL
        # during the native call, and a second thread writing its pointers
        # and shapes into them gave wrong sums and ShapeErrors; a call that
        # finds them busy uses buffers of its own
        self._idle = threading.Lock()

    def __call__(self, leaves, shapes):
        if self._idle.acquire(False):
            try:
                return self._run(leaves, shapes, self.in_ptrs, self.out_ptrs, self.err,
                                 self.a_in, self.a_out, self.a_err, self.dims, self.a_dims)
            finally:
                self._idle.release()
        in_ptrs = (ctypes.c_void_p * max(1, self.n_in))()
        out_ptrs = (ctypes.c_void_p * max(1, len(self.out_leaves)))()
        err = ctypes.c_char_p()
        dims = (ctypes.c_int64 * max(1, len(shapes)))()
        return self._run(leaves, shapes, in_ptrs, out_ptrs, err, ctypes.addressof(in_ptrs),
                         ctypes.addressof(out_ptrs), ctypes.addressof(err), dims,
                         ctypes.addressof(dims))

    def _run(self, leaves, shapes, in_ptrs, out_ptrs, err, a_in, a_out, a_err, dims, a_dims):
        for k, x in enumerate(leaves):
            in_ptrs[k] = _data_ptr(x)
        outs = [np.empty(a.shape, a.dtype) for a in self.out_leaves]
        for k, o in enumerate(outs):
            out_ptrs[k] = _data_ptr(o)
        if len(shapes) > len(dims):
            dims = (ctypes.c_int64 * len(shapes))(*shapes)
            a_dims = ctypes.addressof(dims)
        else:
            dims[:len(shapes)] = shapes
        if self.scratch is not None:
            blk = self.scratch.take()
            try:
                status = self.scratch_fn(a_in, a_dims, a_out, a_err, ctypes.addressof(blk))
            finally:
                self.scratch.give(blk)
        else:
            status = self.fn(a_in, a_dims, a_out, a_err)
        if status:
            _raise(status, err.value)
        it = iter(outs)
        return _rebuild(self.out_aval, it)


#: every live JitFunction, for release_all_scratch
_LIVE = weakref.WeakSet()


def release_all_scratch():
    """Free the scratch memory every jitted function keeps between calls
    (`JitFunction.release_scratch` for all); returns the bytes freed."""
    return sum(f.release_scratch() for f in list(_LIVE))


def _raise(status, msg):
    msg = (msg or b"").decode("utf8", "replace")
    if status == 2:
        raise IndexError(msg)
    if status == 3:
        raise AssertionError(msg)
    if status == 5:
        raise LinAlgError(msg)
    raise ShapeError(msg)


def _rebuild(aval, it):
    if hasattr(type(aval), "_cotan_node"):
        return tree_util.from_node_aval(aval, [_rebuild(a, it) for a in aval])
    if isinstance(aval, tuple):
        return tuple(_rebuild(a, it) for a in aval)
    if isinstance(aval, list):
        return [_rebuild(a, it) for a in aval]
    if isinstance(aval, dict):
        return {k: _rebuild(a, it) for k, a in aval.items()}
    if isinstance(aval, ShapedArray):
        v = next(it)
        if aval.shape == ():
            return v.item() if aval.weak_type else v[()]
        return v
    return aval


def _native_array(x):
    """x as an array the entry can read: C-contiguous, aligned, native byte
    order, a plain ndarray of a compiled dtype (copied when it is not).
    The entry reads raw memory in that layout; a `>f8` array used to hit
    the `float64` entry (the dtype compares equal) and read garbage."""
    t = type(x)
    if t is not np.ndarray:
        # subclasses whose operators or ufuncs mean something else: the
        # compiled program would compute the plain-ndarray answer
        if isinstance(x, (np.matrix, np.ma.MaskedArray)) or \
                getattr(t, "__array_ufunc__", None) is not np.ndarray.__array_ufunc__ or \
                getattr(t, "__array_function__", None) is not np.ndarray.__array_function__:
            raise InputLayoutError(
                f"jit: cannot pass an array of type {t.__module__}.{t.__qualname__}: its "
                "operations differ from a plain ndarray's, which the compiled code "
                "computes; pass np.asarray(x) (or x.data / x.filled() for masked arrays) "
                "if plain-array semantics are meant, or call the function without jit")
        x = x.view(np.ndarray)
    dt = x.dtype
    if dt.kind not in "biuf" or dt.itemsize > 8 or (dt.kind == "f" and dt.itemsize < 4):
        raise InputLayoutError(
            f"jit: cannot pass an array of dtype {dt}: compiled code reads bool, integer, "
            "float32 and float64 arrays; convert it (x.astype(np.float64)) or call the "
            "function without jit")
    if not dt.isnative:
        x = x.astype(dt.newbyteorder("="))
    if not (x.flags.c_contiguous and x.flags.aligned):
        x = np.array(x, order="C", copy=True)
    return x


def _flatten_arg(x, avals, leaves, shapes, key):
    """Append x's run-time leaves; returns x's abstract value."""
    t = type(x)
    if isinstance(x, np.ndarray):
        x = _native_array(x)
        leaves.append(x)
        shapes.extend(x.shape)
        key.append((x.dtype.char, x.shape))
        return ShapedArray(x.shape, x.dtype)
    if t in (float, int, bool):
        a = np.array(x, _SCALAR_TYPES[t])
        leaves.append(a)
        key.append(t)
        return ShapedArray((), a.dtype, weak_type=t is not bool)
    if isinstance(x, np.generic):
        a = np.array(x)
        leaves.append(a)
        key.append(("scalar", a.dtype.char))
        return ShapedArray((), a.dtype)
    if t in (tuple, list):
        key.append((t, len(x)))
        return t(_flatten_arg(e, avals, leaves, shapes, key) for e in x)
    if t is dict:
        # not ("d", keys): that read as a float64 array of shape `keys`
        key.append(("dict", tuple(x)))
        return {k: _flatten_arg(v, avals, leaves, shapes, key) for k, v in x.items()}
    if x is None:
        key.append(None)
        return None
    if tree_util.is_user_node(x):
        # namedtuple, dataclass, registered node: a tuple of its children
        # whose class remembers the node (tree_util.node_aval)
        children = tree_util.node_children(x)[0]
        aval = tree_util.node_aval(x, [None] * len(children))
        key.append((type(aval), len(children)))
        return type(aval)(_flatten_arg(e, avals, leaves, shapes, key) for e in children)
    if hasattr(x, "__array__"):
        return _flatten_arg(np.asarray(x), avals, leaves, shapes, key)
    raise TypeError(f"jit: cannot pass a value of type {t.__name__}; pass arrays, numbers "
                    "or tuples/lists/dicts of them, or mark the argument static "
                    "(static_argnums)")


class JitFunction(_Base):
    """A function compiled per signature; calls hit an in-process cache.

    With the C extension, calling goes straight to its `tp_call`, which runs
    the signatures registered by `_register_fast` natively and hands every
    other call to `_call_slow` (the Python path: pytrees, keywords, statics,
    first calls)."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), backend="cpu"):
        if backend != "cpu":
            raise ValueError(f"jit: backend {backend!r} is not available (use 'cpu')")
        self.__cotan_wrapped__ = fun
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._backend = backend
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self._sig = _signature(fun)
        names = list(self._sig.parameters) if self._sig else []
        nums = set(static_argnums)
        for n in static_argnames:
            if n in names:
                nums.add(names.index(n))
        self._static = frozenset(nums)
        self._cache = {}
        self._lock = threading.RLock()
        _LIVE.add(self)
        self._core = None
        self._source_hash = None

    @property
    def core(self):
        if self._core is None:
            from ..autodiff.materialize import generated_core
            from ..autodiff.normalize import normalize_function
            from ..autodiff.parse import unwrap
            # a generated function (grad, vmap, ...) carries its core form:
            # parsing its source again would give the same program, slower
            # (0.13 s of jit(grad(mlp_loss))'s first call)
            core = generated_core(unwrap(self._fun)) or normalize_function(self._fun)
            # checkpointed calls expanded before the disk key hashes the
            # program: unexpanded, `checkpoint_f_0` names a function whose
            # code could differ in another process
            from ..codegen.expand_checkpoints import expand_checkpoints
            self._core = expand_checkpoints(core)
        return self._core

    def _bind(self, args, kwargs):
        if kwargs or (self._sig is not None and len(args) < len(self._sig.parameters)):
            if self._sig is None:
                raise TypeError("jit: keyword arguments need a function with a signature")
            ba = self._sig.bind(*args, **kwargs)
            ba.apply_defaults()
            return tuple(ba.arguments.values())
        return args

    def _signature_of(self, args):
        leaves, shapes, key, avals = [], [], [], []
        for k, a in enumerate(args):
            if k in self._static:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(f"jit: static argument {k} must be hashable, got "
                                    f"{type(a).__name__}") from None
                key.append(("static", a))
                avals.append(a)
            else:
                avals.append(_flatten_arg(a, avals, leaves, shapes, key))
        return tuple(key), avals, leaves, shapes

    def _call_slow(self, *args, **kwargs):
        if kwargs:
            args = self._bind(args, kwargs)
        key, avals, leaves, shapes = self._signature_of(args)
        entry = self._cache.get(key)
        if entry is None:
            # concurrent misses: one compile per signature, the others wait
            # for it and take its entry (each call looks up its own key)
            with self._lock:
                entry = self._cache.get(key)
                if entry is None:
                    entry = self._compile(key, avals)
                    if _FAST is not None and not kwargs and not self._static:
                        self._register_fast(key, args, entry)
        return entry(leaves, shapes)

    if _FAST is None:
        __call__ = _call_slow

    def _raise_status(self, status, msg):
        _raise(status, msg)

    def _register_fast(self, key, args, entry):
        """Give the C dispatcher this signature when it fits: positional
        arguments that are pytrees (tuples, lists, dicts, None) of ndarrays
        and Python scalars, an output tree of arrays, scalars and
        constants."""
        ins = _fast_input_nodes(key, len(args))
        outs = []
        if ins is None or not _fast_output_nodes(entry.out_aval, outs):
            return
        if max(_count_leaves(ins), _count_leaves(outs)) > _FAST.MAX_LEAVES:
            return
        try:
            self._add_signature(ctypes.cast(entry.fn, ctypes.c_void_p).value,
                                entry.scratch_address or 0, entry.n_scratch if
                                entry.scratch_address else 0, scratch_limit(), ins, outs)
        except Exception:  # pragma: no cover - the Python path still works
            pass

    def release_scratch(self):
        """Free the scratch memory (arena, reverse-mode stack buffers) this
        function's compiled entries keep between calls; returns the bytes
        freed.  Calls in flight keep theirs until they return.  The memory
        is also freed when the function is garbage collected."""
        freed = 0
        if _FAST is not None and isinstance(self, _FAST.Dispatcher):
            freed += self._release_fast_scratch()
        for entry in list(self._cache.values()):
            if getattr(entry, "scratch", None) is not None:
                freed += entry.scratch.release()
        return freed

    def scratch_kept(self):
        """Bytes of scratch memory kept between calls (see release_scratch)."""
        kept = 0
        if _FAST is not None and isinstance(self, _FAST.Dispatcher):
            kept += self._fast_scratch_kept()
        for entry in list(self._cache.values()):
            if getattr(entry, "scratch", None) is not None:
                kept += entry.scratch.kept()
        return kept

    def lower(self, *args, **kwargs):
        from ..codegen.llvm.backend import lower_cpu
        args = self._bind(args, kwargs)
        key, avals, _, _ = self._signature_of(args)
        return lower_cpu(self.core, avals, repr(key))

    def _disk_key(self, avals):
        from ..autodiff.materialize import to_source
        from ..codegen.llvm import binding as llvm_binding
        from ..codegen.llvm.kernels import num_threads
        import cotan
        if self._source_hash is None:
            h = hashlib.sha256(to_source(self.core.node).encode())
            for name in sorted(self.core.captured):
                v = self.core.captured[name]
                h.update(name.encode())
                if isinstance(v, (np.ndarray, np.generic)):
                    h.update(np.asarray(v).dtype.str.encode())
                    h.update(repr(np.shape(v)).encode())
                    h.update(np.ascontiguousarray(v).tobytes())
                else:
                    h.update(repr(v).encode())
            self._source_hash = h.hexdigest()
        return disk_cache.entry_key(self._source_hash, repr(avals), llvm_binding.target_key(),
                                    cotan.__version__, disk_cache.compiler_hash(),
                                    num_threads())

    def _compile(self, key, avals):
        from ..codegen.llvm import binding as llvm_binding
        # one compile at a time in the process (see llvm_binding.LOCK)
        with llvm_binding.LOCK:
            return self._compile_locked(key, avals)

    def _compile_locked(self, key, avals):
        from ..codegen.llvm import binding as llvm_binding
        from ..codegen.llvm.backend import lower_cpu
        use_disk = disk_cache.cache_dir() is not None
        dkey = self._disk_key(avals) if use_disk else None
        hit = disk_cache.load(dkey) if use_disk else None
        entry = None
        if hit is not None:
            try:
                llvm_binding.initialize()
                if hit.get("objs"):
                    # object code: no optimization, no code generation
                    native = llvm_binding.NativeModule(
                        llvm_binding.empty_module_for_objects(), object_codes=hit["objs"])
                else:
                    mod = llvm_binding.parse_optimized(hit["ir"])
                    native = llvm_binding.NativeModule(mod)
                from ..codegen.llvm.emit import ENTRY
                entry = _Compiled(native.address(ENTRY), hit["out_aval"], hit["n_in"],
                                  hit["n_out"], native)
            except Exception:  # stale or damaged entry: rebuild
                entry = None
        if entry is None:
            lowered = lower_cpu(self.core, avals, repr(key))
            native = lowered.compile()
            entry = _Compiled(native.address, native.out_aval, native.n_inputs,
                              native.n_outputs, native)
            if use_disk:
                objs = getattr(native.native, "object_codes", None)
                # the IR text is only the fallback when there is no object code
                disk_cache.store(dkey, {"ir": None if objs else str(lowered.optimized()[0]),
                                        "objs": objs, "out_aval": native.out_aval,
                                        "n_in": native.n_inputs, "n_out": native.n_outputs})
        self._cache[key] = entry
        return entry

    def __repr__(self):
        return f"<cotan.jit of {getattr(self._fun, '__qualname__', self._fun)!r}>"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


# the C fast path's pytree nodes (runtime/fastcall.py): (kind, n, typenum, shape, obj)
_N_ARRAY, _N_FLOAT, _N_INT, _N_BOOL, _N_TUPLE, _N_LIST, _N_DICT, _N_NONE, _N_PYSCALAR, \
    _N_NPSCALAR, _N_CONST = range(11)
_N_LEAVES = (_N_ARRAY, _N_FLOAT, _N_INT, _N_BOOL, _N_PYSCALAR, _N_NPSCALAR)


def _count_leaves(nodes):
    return sum(1 for n in nodes if n[0] in _N_LEAVES)


def _fast_input_nodes(key, nargs):
    """The C matcher's pre-order nodes for a signature key (`_flatten_arg`
    writes it in pre-order), rooted at the tuple of positional arguments;
    None when some part of it needs the Python path (numpy scalars, user
    pytree nodes, static arguments)."""
    nodes = [(_N_TUPLE, nargs, 0, (), None)]
    for e in key:
        if e is float:
            nodes.append((_N_FLOAT, 0, 0, (), None))
        elif e is int:
            nodes.append((_N_INT, 0, 0, (), None))
        elif e is bool:
            nodes.append((_N_BOOL, 0, 0, (), None))
        elif e is None:
            nodes.append((_N_NONE, 0, 0, (), None))
        elif type(e) is tuple and len(e) == 2 and e[0] in (tuple, list):
            nodes.append((_N_TUPLE if e[0] is tuple else _N_LIST, e[1], 0, (), None))
        elif type(e) is tuple and len(e) == 2 and e[0] == "dict":
            nodes.append((_N_DICT, len(e[1]), 0, (), e[1]))
        elif type(e) is tuple and len(e) == 2 and type(e[0]) is str and len(e[0]) == 1 \
                and type(e[1]) is tuple:
            nodes.append((_N_ARRAY, 0, np.dtype(e[0]).num, e[1], None))
        else:
            return None
    return nodes


def _fast_output_nodes(aval, nodes):
    """Append the output tree's pre-order nodes (as `_rebuild` reads it);
    False for a user pytree node."""
    if hasattr(type(aval), "_cotan_node"):
        return False
    if isinstance(aval, ShapedArray):
        if aval.shape == ():
            nodes.append((_N_PYSCALAR if aval.weak_type else _N_NPSCALAR, 0, aval.dtype.num,
                          (), None))
        else:
            nodes.append((_N_ARRAY, 0, aval.dtype.num, aval.shape, None))
        return True
    if type(aval) in (tuple, list):
        nodes.append((_N_TUPLE if type(aval) is tuple else _N_LIST, len(aval), 0, (), None))
        return all(_fast_output_nodes(a, nodes) for a in aval)
    if type(aval) is dict:
        nodes.append((_N_DICT, len(aval), 0, (), tuple(aval)))
        return all(_fast_output_nodes(a, nodes) for a in aval.values())
    if isinstance(aval, (tuple, list, dict)):
        return False        # a subclass: _rebuild would give the base type; keep it exact
    nodes.append((_N_CONST, 0, 0, (), aval))
    return True


def _signature(fun):
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


class CompiledCallError(CotanError):
    pass


class InputLayoutError(CotanError, TypeError):
    """An argument a compiled entry cannot read and cotan will not convert
    silently (object dtype, an ndarray subclass with its own semantics)."""
