"""The native fast call path of jitted functions (a small C extension).

Owns building and loading `cotan_fastcall`: its C source (below) is
compiled with the system C compiler (`cc`/`gcc`, Python and NumPy headers)
the first time a process needs it and kept on disk
(`~/.cache/cotan/fastcall/<hash>/`, or `COTAN_CACHE_DIR`), so later
processes only import it.  It defines `Dispatcher`, the C base class of
`JitFunction`, whose `tp_call` matches the arguments against registered
native signatures and calls the entry directly (about a microsecond); a
call that matches none goes to the Python method `_call_slow`.  Where no
compiler or headers exist, or `COTAN_NO_FASTCALL=1`, `load()` returns None
and dispatch keeps its ctypes path.  Must not compile cotan functions.
"""

import hashlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile

_SOURCE = r"""/* cotan's fast call path: a C base class for jitted functions.
 *
 * `Dispatcher.__call__` (tp_call) matches positional arguments against the
 * signatures registered with `_add_signature` (exact ndarray type, dtype,
 * shape, C-contiguous, aligned, native byte order; or exact Python
 * float/int/bool), allocates the outputs with PyArray_SimpleNew, calls the
 * native entry
 *     int32 cotan_entry(void **in_ptrs, int64 *in_shapes, void **out_ptrs,
 *                       const char **err)
 * and returns the output (one array/scalar or a flat tuple of them).  Any
 * other call goes to the Python method `_call_slow(*args, **kwargs)`; a
 * nonzero status to `_raise_status(status, message)`.
 * Built by runtime/fastcall.py with the system C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>

typedef int32_t (*entry_t)(void **, int64_t *, void **, const char **);

#define MAXA 16
#define MAXD 8
#define MAXS 8

enum { K_ARRAY = 0, K_FLOAT = 1, K_INT = 2, K_BOOL = 3 };
enum { O_ARRAY = 0, O_PYTHON = 1, O_NUMPY = 2 };

typedef struct {
    entry_t fn;
    int nargs, nout, out_tuple, nshapes;
    int kind[MAXA], typenum[MAXA], ndim[MAXA];
    npy_intp dims[MAXA][MAXD];
    int out_typenum[MAXA], out_ndim[MAXA], out_kind[MAXA];
    npy_intp out_dims[MAXA][MAXD];
    int64_t shapes[MAXA * MAXD];
} Sig;

typedef struct {
    PyObject_HEAD
    int nsigs;
    Sig sigs[MAXS];
} Dispatcher;

static int match(Sig *s, PyObject *args, void **in_ptrs, double *dbl, int64_t *i64,
                 uint8_t *u8) {
    for (int i = 0; i < s->nargs; i++) {
        PyObject *o = PyTuple_GET_ITEM(args, i);
        switch (s->kind[i]) {
        case K_ARRAY: {
            if (!PyArray_CheckExact(o)) return 0;
            PyArrayObject *a = (PyArrayObject *)o;
            if (PyArray_TYPE(a) != s->typenum[i] || PyArray_NDIM(a) != s->ndim[i]) return 0;
            npy_intp *d = PyArray_DIMS(a);
            for (int k = 0; k < s->ndim[i]; k++)
                if (d[k] != s->dims[i][k]) return 0;
            if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a) ||
                !PyArray_ISNOTSWAPPED(a))
                return 0;
            in_ptrs[i] = PyArray_DATA(a);
            break;
        }
        case K_FLOAT:
            if (!PyFloat_CheckExact(o)) return 0;
            dbl[i] = PyFloat_AS_DOUBLE(o);
            in_ptrs[i] = &dbl[i];
            break;
        case K_INT: {
            if (!PyLong_CheckExact(o)) return 0;
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
            if (overflow) return 0;
            i64[i] = (int64_t)v;
            in_ptrs[i] = &i64[i];
            break;
        }
        case K_BOOL:
            if (!PyBool_Check(o)) return 0;
            u8[i] = (o == Py_True);
            in_ptrs[i] = &u8[i];
            break;
        default:
            return 0;
        }
    }
    return 1;
}

static PyObject *call_slow(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *slow = PyObject_GetAttrString(self, "_call_slow");
    if (!slow) return NULL;
    PyObject *r = PyObject_Call(slow, args, kw);
    Py_DECREF(slow);
    return r;
}

static PyObject *run(PyObject *self, Sig *s, void **in_ptrs) {
    PyObject *outs[MAXA];
    void *out_ptrs[MAXA];
    double scratch[MAXA];
    for (int k = 0; k < s->nout; k++) {
        if (s->out_kind[k] == O_ARRAY) {
            outs[k] = PyArray_SimpleNew(s->out_ndim[k], s->out_dims[k], s->out_typenum[k]);
            if (!outs[k]) {
                for (int j = 0; j < k; j++) Py_XDECREF(outs[j]);
                return NULL;
            }
            out_ptrs[k] = PyArray_DATA((PyArrayObject *)outs[k]);
        } else {
            outs[k] = NULL;
            out_ptrs[k] = &scratch[k];
        }
    }
    const char *err = NULL;
    int32_t status = s->fn(in_ptrs, s->shapes, out_ptrs, &err);
    if (status) {
        for (int k = 0; k < s->nout; k++) Py_XDECREF(outs[k]);
        PyObject *r = PyObject_CallMethod(self, "_raise_status", "iy", (int)status,
                                          err ? err : "");
        Py_XDECREF(r);
        return NULL;
    }
    for (int k = 0; k < s->nout; k++) {
        if (s->out_kind[k] == O_ARRAY) continue;
        PyArray_Descr *descr = PyArray_DescrFromType(s->out_typenum[k]);
        PyObject *sc = PyArray_Scalar(&scratch[k], descr, NULL);
        Py_DECREF(descr);
        if (sc && s->out_kind[k] == O_PYTHON) {
            PyObject *item = PyObject_CallMethod(sc, "item", NULL);
            Py_DECREF(sc);
            sc = item;
        }
        if (!sc) {
            for (int j = 0; j < s->nout; j++) Py_XDECREF(outs[j]);
            return NULL;
        }
        outs[k] = sc;
    }
    if (!s->out_tuple) return outs[0];
    PyObject *t = PyTuple_New(s->nout);
    if (!t) {
        for (int k = 0; k < s->nout; k++) Py_DECREF(outs[k]);
        return NULL;
    }
    for (int k = 0; k < s->nout; k++) PyTuple_SET_ITEM(t, k, outs[k]);
    return t;
}

static PyObject *dispatcher_call(PyObject *self, PyObject *args, PyObject *kw) {
    Dispatcher *d = (Dispatcher *)self;
    if (kw == NULL || PyDict_GET_SIZE(kw) == 0) {
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        void *in_ptrs[MAXA];
        double dbl[MAXA];
        int64_t i64[MAXA];
        uint8_t u8[MAXA];
        for (int k = 0; k < d->nsigs; k++) {
            Sig *s = &d->sigs[k];
            if (s->nargs == n && match(s, args, in_ptrs, dbl, i64, u8))
                return run(self, s, in_ptrs);
        }
    }
    return call_slow(self, args, kw);
}

static int read_dims(PyObject *shape, npy_intp *dims, int *ndim) {
    PyObject *seq = PySequence_Fast(shape, "shape must be a sequence");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAXD) { Py_DECREF(seq); return 1; }
    for (Py_ssize_t i = 0; i < n; i++)
        dims[i] = (npy_intp)PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
    *ndim = (int)n;
    Py_DECREF(seq);
    return PyErr_Occurred() ? -1 : 0;
}

/* _add_signature(address, [(kind, typenum, shape)], [(out_kind, typenum, shape)], tuple)
 * -> True if registered, False if the signature does not fit the fast path */
static PyObject *add_signature(PyObject *self, PyObject *a) {
    Dispatcher *d = (Dispatcher *)self;
    unsigned long long addr;
    PyObject *ins, *outs;
    int out_tuple;
    if (!PyArg_ParseTuple(a, "KOOp", &addr, &ins, &outs, &out_tuple)) return NULL;
    if (d->nsigs >= MAXS || PyList_Size(ins) > MAXA || PyList_Size(outs) > MAXA ||
        PyList_Size(outs) < 1)
        Py_RETURN_FALSE;
    Sig s;
    memset(&s, 0, sizeof s);
    s.fn = (entry_t)(uintptr_t)addr;
    s.nargs = (int)PyList_Size(ins);
    s.nout = (int)PyList_Size(outs);
    s.out_tuple = out_tuple;
    for (int i = 0; i < s.nargs; i++) {
        PyObject *shape;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(ins, i), "iiO", &s.kind[i], &s.typenum[i], &shape))
            return NULL;
        int r = read_dims(shape, s.dims[i], &s.ndim[i]);
        if (r < 0) return NULL;
        if (r > 0) Py_RETURN_FALSE;
        for (int k = 0; k < s.ndim[i]; k++) {
            if (s.nshapes >= MAXA * MAXD) Py_RETURN_FALSE;
            s.shapes[s.nshapes++] = (int64_t)s.dims[i][k];
        }
    }
    for (int i = 0; i < s.nout; i++) {
        PyObject *shape;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(outs, i), "iiO", &s.out_kind[i], &s.out_typenum[i],
                              &shape))
            return NULL;
        int r = read_dims(shape, s.out_dims[i], &s.out_ndim[i]);
        if (r < 0) return NULL;
        if (r > 0) Py_RETURN_FALSE;
    }
    d->sigs[d->nsigs++] = s;
    Py_RETURN_TRUE;
}

static PyObject *clear_signatures(PyObject *self, PyObject *unused) {
    ((Dispatcher *)self)->nsigs = 0;
    Py_RETURN_NONE;
}

static PyMethodDef dispatcher_methods[] = {
    {"_add_signature", add_signature, METH_VARARGS, "register a native signature"},
    {"_clear_signatures", clear_signatures, METH_NOARGS, "forget the native signatures"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cotan_fastcall.Dispatcher",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_call = dispatcher_call,
    .tp_new = PyType_GenericNew,
    .tp_methods = dispatcher_methods,
    .tp_doc = "base class of cotan.jit's functions: the native fast call path",
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "cotan_fastcall", NULL, -1,
                                       NULL};

PyMODINIT_FUNC PyInit_cotan_fastcall(void) {
    import_array();
    if (PyType_Ready(&DispatcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&DispatcherType);
    PyModule_AddObject(m, "Dispatcher", (PyObject *)&DispatcherType);
    return m;
}
"""

_loaded = []


def _build_dir():
    base = os.environ.get("COTAN_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "cotan")
    import numpy
    tag = hashlib.sha256((_SOURCE + sys.version + numpy.__version__ +
                          sysconfig.get_config_var("EXT_SUFFIX")).encode()).hexdigest()[:16]
    return os.path.join(base, "fastcall", tag)


def _compile(folder):
    import numpy
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = os.path.join(folder, "cotan_fastcall" + suffix)
    if os.path.exists(target):
        return target
    os.makedirs(folder, exist_ok=True)
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        c_file = os.path.join(tmp, "cotan_fastcall.c")
        with open(c_file, "w") as f:
            f.write(_SOURCE)
        out = os.path.join(tmp, "cotan_fastcall" + suffix)
        cmd = [cc, "-O2", "-shared", "-fPIC", "-I" + sysconfig.get_paths()["include"],
               "-I" + numpy.get_include(), c_file, "-o", out]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(out, target)     # atomic: concurrent builders do not clash
    return target


def load():
    """The `cotan_fastcall` module, or None where it cannot be built."""
    if _loaded:
        return _loaded[0]
    mod = None
    if not os.environ.get("COTAN_NO_FASTCALL"):
        try:
            try:
                path = _compile(_build_dir())
            except OSError:
                path = _compile(os.path.join(tempfile.gettempdir(), "cotan-fastcall-" +
                                             os.path.basename(_build_dir())))
            loader = importlib.machinery.ExtensionFileLoader("cotan_fastcall", path)
            spec = importlib.util.spec_from_file_location("cotan_fastcall", path,
                                                          loader=loader)
            mod = importlib.util.module_from_spec(spec)
            loader.exec_module(mod)
        except Exception:  # no compiler, no headers, a sandbox: the ctypes path
            mod = None
    _loaded.append(mod)
    return mod
