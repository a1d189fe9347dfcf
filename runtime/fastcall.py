"""The native fast call path of jitted functions (a small C extension).

Owns building and loading `cotan_fastcall`: its C source (below) is
compiled with the system C compiler (`cc`/`gcc`, Python and NumPy headers)
the first time a process needs it and kept on disk
(`~/.cache/cotan/fastcall/<hash>/`, or `COTAN_CACHE_DIR`), so later
processes only import it.  It defines `Dispatcher`, the C base class of
`JitFunction`, whose `tp_call` matches the arguments (pytrees of arrays
and Python scalars, flattened in C) against registered native signatures
and calls the entry directly (a fraction of a microsecond plus tens of
nanoseconds per leaf), keeping the entry's scratch memory in a pool per
signature; a call that matches none goes to the Python method
`_call_slow`.  Where no
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
 * `Dispatcher.__call__` (tp_call) matches the positional arguments against
 * the signatures registered with `_add_signature`: a pytree structure (exact
 * tuple / list / dict with the same keys in the same order / None) whose
 * leaves are exact ndarrays (dtype, shape, C-contiguous, aligned, native
 * byte order) or exact Python float/int/bool.  It flattens them straight
 * into the entry's pointer array, allocates the outputs with
 * PyArray_SimpleNew, calls the native entry
 *     int32 cotan_entry_scratch(void **in_ptrs, int64 *in_shapes,
 *                               void **out_ptrs, const char **err,
 *                               void **scratch)
 * with scratch records kept per signature (a pool: one block per call in
 * flight, so threads and reentrant calls never share one; blocks over the
 * signature's byte limit are freed after the call), and rebuilds the output
 * pytree.  Any other call goes to the Python method `_call_slow(*args,
 * **kwargs)`; a nonzero status to `_raise_status(status, message)`.
 * Built by runtime/fastcall.py with the system C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>

typedef int32_t (*entry_t)(void **, int64_t *, void **, const char **);
typedef int32_t (*sentry_t)(void **, int64_t *, void **, const char **, void **);

#define MAXD 8          /* dimensions of an array leaf */
#define MAXS 8          /* signatures per function */
#define MAXDEPTH 32     /* nesting of a pytree */
#define MAXLEAVES 1024  /* leaves in or out (the pointer arrays live on the C stack) */
#define POOL 8          /* scratch blocks kept per signature */

/* node kinds, in pre-order; leaves of inputs: N_ARRAY/N_FLOAT/N_INT/N_BOOL,
 * of outputs: N_ARRAY/N_PYSCALAR/N_NPSCALAR/N_CONST */
enum { N_ARRAY = 0, N_FLOAT = 1, N_INT = 2, N_BOOL = 3, N_TUPLE = 4, N_LIST = 5,
       N_DICT = 6, N_NONE = 7, N_PYSCALAR = 8, N_NPSCALAR = 9, N_CONST = 10 };

typedef struct {
    int kind, n, typenum, ndim;
    npy_intp dims[MAXD];
    PyObject *obj;      /* N_DICT: the keys (a tuple); N_CONST: the value */
} Node;

typedef struct {
    entry_t fn;
    sentry_t sfn;       /* NULL: the entry allocates its own scratch */
    int nrec;           /* scratch records {ptr, capacity} the entry reads */
    long long keep;     /* bytes of scratch kept per signature at most */
    Node *in, *out;
    int nin_nodes, nout_nodes, nleaves, nout_leaves;
    int64_t *shapes;
    void **pool[POOL];
    int npool, busy, dead;
} Sig;

typedef struct {
    PyObject_HEAD
    int nsigs;
    unsigned long long fast_calls;
    Sig *sigs[MAXS];
} Dispatcher;

/* ---------------------------------------------------------------- scratch */

static void block_free(void **blk, int nrec) {
    for (int k = 0; k < nrec; k++) free(blk[2 * k]);
    PyMem_RawFree(blk);
}

static long long block_bytes(void **blk, int nrec) {
    long long n = 0;
    for (int k = 0; k < nrec; k++) n += (long long)(intptr_t)blk[2 * k + 1];
    return n;
}

static void **scratch_take(Sig *s) {
    if (s->npool) return s->pool[--s->npool];
    return (void **)PyMem_RawCalloc(2 * (size_t)s->nrec, sizeof(void *));
}

static void scratch_give(Sig *s, void **blk) {
    long long kept = 0;
    for (int k = 0; k < s->npool; k++) kept += block_bytes(s->pool[k], s->nrec);
    if (!s->dead && s->npool < POOL && kept + block_bytes(blk, s->nrec) <= s->keep)
        s->pool[s->npool++] = blk;
    else
        block_free(blk, s->nrec);
}

static void scratch_release(Sig *s) {
    while (s->npool) block_free(s->pool[--s->npool], s->nrec);
}

static void nodes_free(Node *nodes, int n) {
    if (!nodes) return;
    for (int k = 0; k < n; k++) Py_XDECREF(nodes[k].obj);
    PyMem_Free(nodes);
}

static void sig_free(Sig *s) {
    scratch_release(s);
    nodes_free(s->in, s->nin_nodes);
    nodes_free(s->out, s->nout_nodes);
    PyMem_Free(s->shapes);
    PyMem_Free(s);
}

/* ---------------------------------------------------------------- inputs */

typedef struct {
    Node *nodes;
    int pos, leaf;
    void **ptrs;
    int64_t *scal;
} Walk;

static int match_node(Walk *w, PyObject *o) {
    Node *nd = &w->nodes[w->pos++];
    switch (nd->kind) {
    case N_ARRAY: {
        if (!PyArray_CheckExact(o)) return 0;
        PyArrayObject *a = (PyArrayObject *)o;
        if (PyArray_TYPE(a) != nd->typenum || PyArray_NDIM(a) != nd->ndim) return 0;
        npy_intp *d = PyArray_DIMS(a);
        for (int k = 0; k < nd->ndim; k++)
            if (d[k] != nd->dims[k]) return 0;
        if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a) || !PyArray_ISNOTSWAPPED(a))
            return 0;
        w->ptrs[w->leaf++] = PyArray_DATA(a);
        return 1;
    }
    case N_FLOAT: {
        if (!PyFloat_CheckExact(o)) return 0;
        double v = PyFloat_AS_DOUBLE(o);
        memcpy(&w->scal[w->leaf], &v, sizeof v);
        w->ptrs[w->leaf] = &w->scal[w->leaf];
        w->leaf++;
        return 1;
    }
    case N_INT: {
        if (!PyLong_CheckExact(o)) return 0;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
        w->scal[w->leaf] = (int64_t)v;
        w->ptrs[w->leaf] = &w->scal[w->leaf];
        w->leaf++;
        return 1;
    }
    case N_BOOL:
        if (!PyBool_Check(o)) return 0;
        w->scal[w->leaf] = 0;
        *(uint8_t *)&w->scal[w->leaf] = (o == Py_True);
        w->ptrs[w->leaf] = &w->scal[w->leaf];
        w->leaf++;
        return 1;
    case N_NONE:
        return o == Py_None;
    case N_TUPLE:
        if (!PyTuple_CheckExact(o) || PyTuple_GET_SIZE(o) != nd->n) return 0;
        for (int k = 0; k < nd->n; k++)
            if (!match_node(w, PyTuple_GET_ITEM(o, k))) return 0;
        return 1;
    case N_LIST:
        if (!PyList_CheckExact(o) || PyList_GET_SIZE(o) != nd->n) return 0;
        for (int k = 0; k < nd->n; k++)
            if (!match_node(w, PyList_GET_ITEM(o, k))) return 0;
        return 1;
    case N_DICT: {
        if (!PyDict_CheckExact(o) || PyDict_GET_SIZE(o) != nd->n) return 0;
        Py_ssize_t it = 0;
        PyObject *key, *value;
        int k = 0;
        while (PyDict_Next(o, &it, &key, &value)) {
            PyObject *want = PyTuple_GET_ITEM(nd->obj, k++);
            if (key != want) {
                /* the slow path's key compares the keys with == */
                int eq = PyObject_RichCompareBool(key, want, Py_EQ);
                if (eq <= 0) { PyErr_Clear(); return 0; }
            }
            if (!match_node(w, value)) return 0;
        }
        return k == nd->n;
    }
    default:
        return 0;
    }
}

/* --------------------------------------------------------------- outputs */

typedef struct {
    Node *nodes;
    int pos, leaf;
    PyObject **leaves;
} Build;

static PyObject *build_node(Build *b) {
    Node *nd = &b->nodes[b->pos++];
    switch (nd->kind) {
    case N_ARRAY: case N_PYSCALAR: case N_NPSCALAR: {
        PyObject *v = b->leaves[b->leaf];
        b->leaves[b->leaf++] = NULL;    /* the reference moves into the tree */
        return v;
    }
    case N_CONST:
        Py_INCREF(nd->obj);
        return nd->obj;
    case N_TUPLE: case N_LIST: {
        PyObject *t = nd->kind == N_TUPLE ? PyTuple_New(nd->n) : PyList_New(nd->n);
        if (!t) return NULL;
        for (int k = 0; k < nd->n; k++) {
            PyObject *e = build_node(b);
            if (!e) { Py_DECREF(t); return NULL; }
            if (nd->kind == N_TUPLE) PyTuple_SET_ITEM(t, k, e);
            else PyList_SET_ITEM(t, k, e);
        }
        return t;
    }
    case N_DICT: {
        PyObject *d = PyDict_New();
        if (!d) return NULL;
        for (int k = 0; k < nd->n; k++) {
            PyObject *e = build_node(b);
            if (!e || PyDict_SetItem(d, PyTuple_GET_ITEM(nd->obj, k), e) < 0) {
                Py_XDECREF(e);
                Py_DECREF(d);
                return NULL;
            }
            Py_DECREF(e);
        }
        return d;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "cotan fast path: bad output node");
        return NULL;
    }
}

static PyObject *call_slow(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *slow = PyObject_GetAttrString(self, "_call_slow");
    if (!slow) return NULL;
    PyObject *r = PyObject_Call(slow, args, kw);
    Py_DECREF(slow);
    return r;
}

static PyObject *run(PyObject *self, Sig *s, void **in_ptrs) {
    int nl = s->nout_leaves;
    PyObject *leaves[nl > 0 ? nl : 1];
    void *out_ptrs[nl > 0 ? nl : 1];
    double scal[nl > 0 ? nl : 1];
    int k = 0;
    for (int i = 0; i < s->nout_nodes; i++) {
        Node *nd = &s->out[i];
        if (nd->kind == N_ARRAY) {
            leaves[k] = PyArray_SimpleNew(nd->ndim, nd->dims, nd->typenum);
            if (!leaves[k]) {
                for (int j = 0; j < k; j++) Py_XDECREF(leaves[j]);
                return NULL;
            }
            out_ptrs[k] = PyArray_DATA((PyArrayObject *)leaves[k]);
            k++;
        } else if (nd->kind == N_PYSCALAR || nd->kind == N_NPSCALAR) {
            leaves[k] = NULL;
            out_ptrs[k] = &scal[k];
            k++;
        }
    }
    const char *err = NULL;
    int32_t status;
    void **blk = s->sfn ? scratch_take(s) : NULL;
    s->busy++;      /* _clear_signatures from a callback frees it afterwards */
    if (blk)
        status = s->sfn(in_ptrs, s->shapes, out_ptrs, &err, blk);
    else
        status = s->fn(in_ptrs, s->shapes, out_ptrs, &err);
    s->busy--;
    if (blk) scratch_give(s, blk);
    PyObject *r = NULL;
    if (status) {
        for (int j = 0; j < nl; j++) Py_XDECREF(leaves[j]);
        r = PyObject_CallMethod(self, "_raise_status", "iy", (int)status, err ? err : "");
        Py_XDECREF(r);
        r = NULL;
        goto done;
    }
    k = 0;
    for (int i = 0; i < s->nout_nodes; i++) {
        Node *nd = &s->out[i];
        if (nd->kind == N_ARRAY) { k++; continue; }
        if (nd->kind != N_PYSCALAR && nd->kind != N_NPSCALAR) continue;
        PyArray_Descr *descr = PyArray_DescrFromType(nd->typenum);
        PyObject *sc = PyArray_Scalar(&scal[k], descr, NULL);
        Py_DECREF(descr);
        if (sc && nd->kind == N_PYSCALAR) {
            PyObject *item = PyObject_CallMethod(sc, "item", NULL);
            Py_DECREF(sc);
            sc = item;
        }
        if (!sc) {
            for (int j = 0; j < nl; j++) Py_XDECREF(leaves[j]);
            goto done;
        }
        leaves[k++] = sc;
    }
    Build b = {s->out, 0, 0, leaves};
    r = build_node(&b);
    for (int j = 0; j < nl; j++) Py_XDECREF(leaves[j]);    /* left over on an error */
done:
    if (s->dead && !s->busy) sig_free(s);
    return r;
}

static PyObject *dispatcher_call(PyObject *self, PyObject *args, PyObject *kw) {
    Dispatcher *d = (Dispatcher *)self;
    if (kw == NULL || PyDict_GET_SIZE(kw) == 0) {
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        for (int k = 0; k < d->nsigs; k++) {
            Sig *s = d->sigs[k];
            if (s->in[0].n != n) continue;
            int nl = s->nleaves;
            void *in_ptrs[nl > 0 ? nl : 1];
            int64_t scal[nl > 0 ? nl : 1];
            Walk w = {s->in, 0, 0, in_ptrs, scal};
            if (match_node(&w, args)) {
                d->fast_calls++;
                return run(self, s, in_ptrs);
            }
        }
    }
    return call_slow(self, args, kw);
}

/* ---------------------------------------------------------- registration */

/* nodes from [(kind, n, typenum, shape, obj)]; 1: does not fit, -1: error */
static int read_nodes(PyObject *list, Node **out, int *count, int *leaves, int64_t **shapes,
                      int *nshapes) {
    Py_ssize_t n = PyList_Size(list);
    if (n < 0) return -1;
    if (n < 1 || n > 16 * MAXLEAVES) return 1;
    Node *nodes = (Node *)PyMem_Calloc((size_t)n, sizeof(Node));
    if (!nodes) { PyErr_NoMemory(); return -1; }
    *out = nodes;
    *count = (int)n;
    *leaves = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Node *nd = &nodes[i];
        PyObject *shape, *obj;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, i), "iiiOO", &nd->kind, &nd->n,
                              &nd->typenum, &shape, &obj))
            return -1;
        if (nd->kind == N_DICT || nd->kind == N_CONST) {
            if (nd->kind == N_DICT && (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != nd->n))
                return 1;
            Py_INCREF(obj);
            nd->obj = obj;
        }
        if (nd->kind == N_ARRAY || nd->kind == N_FLOAT || nd->kind == N_INT ||
            nd->kind == N_BOOL || nd->kind == N_PYSCALAR || nd->kind == N_NPSCALAR)
            (*leaves)++;
        if (nd->kind == N_ARRAY) {
            PyObject *seq = PySequence_Fast(shape, "shape must be a sequence");
            if (!seq) return -1;
            Py_ssize_t nd_ = PySequence_Fast_GET_SIZE(seq);
            if (nd_ > MAXD) { Py_DECREF(seq); return 1; }
            nd->ndim = (int)nd_;
            for (Py_ssize_t k = 0; k < nd_; k++)
                nd->dims[k] = (npy_intp)PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, k));
            Py_DECREF(seq);
            if (PyErr_Occurred()) return -1;
            if (shapes) {
                int64_t *grown = (int64_t *)PyMem_Realloc(*shapes,
                                                          sizeof(int64_t) * (*nshapes + nd_ + 1));
                if (!grown) { PyErr_NoMemory(); return -1; }
                *shapes = grown;
                for (Py_ssize_t k = 0; k < nd_; k++) (*shapes)[(*nshapes)++] = nd->dims[k];
            }
        }
    }
    if (*leaves > MAXLEAVES) return 1;
    return 0;
}

/* depth of the tree at `pos` (and that it is well formed): -1 when not */
static int check_tree(Node *nodes, int n, int *pos, int depth) {
    if (*pos >= n || depth > MAXDEPTH) return -1;
    Node *nd = &nodes[(*pos)++];
    if (nd->kind == N_TUPLE || nd->kind == N_LIST || nd->kind == N_DICT) {
        if (nd->n < 0) return -1;
        for (int k = 0; k < nd->n; k++)
            if (check_tree(nodes, n, pos, depth + 1) < 0) return -1;
    } else if (nd->kind < 0 || nd->kind > N_CONST) {
        return -1;
    }
    return 0;
}

/* _add_signature(entry, scratch_entry, n_records, keep_bytes, in_nodes, out_nodes)
 * -> True if registered, False if the signature does not fit the fast path.
 * in_nodes: the tuple of positional arguments, in pre-order; out_nodes: the
 * output tree. */
static PyObject *add_signature(PyObject *self, PyObject *a) {
    Dispatcher *d = (Dispatcher *)self;
    unsigned long long addr, saddr;
    int nrec;
    long long keep;
    PyObject *ins, *outs;
    if (!PyArg_ParseTuple(a, "KKiLOO", &addr, &saddr, &nrec, &keep, &ins, &outs)) return NULL;
    if (d->nsigs >= MAXS) Py_RETURN_FALSE;
    Sig *s = (Sig *)PyMem_Calloc(1, sizeof(Sig));
    if (!s) return PyErr_NoMemory();
    s->fn = (entry_t)(uintptr_t)addr;
    s->sfn = nrec > 0 ? (sentry_t)(uintptr_t)saddr : NULL;
    s->nrec = nrec;
    s->keep = keep;
    int nshapes = 0;
    int r = read_nodes(ins, &s->in, &s->nin_nodes, &s->nleaves, &s->shapes, &nshapes);
    if (r == 0)
        r = read_nodes(outs, &s->out, &s->nout_nodes, &s->nout_leaves, NULL, NULL);
    if (r == 0) {
        int pos = 0;
        if (s->in[0].kind != N_TUPLE || check_tree(s->in, s->nin_nodes, &pos, 0) < 0 ||
            pos != s->nin_nodes)
            r = 1;
        pos = 0;
        if (r == 0 && (check_tree(s->out, s->nout_nodes, &pos, 0) < 0 ||
                       pos != s->nout_nodes))
            r = 1;
    }
    if (r == 0 && !s->shapes) {
        s->shapes = (int64_t *)PyMem_Calloc(1, sizeof(int64_t));
        if (!s->shapes) { PyErr_NoMemory(); r = -1; }
    }
    if (r != 0) {
        sig_free(s);
        if (r < 0) return NULL;
        Py_RETURN_FALSE;
    }
    d->sigs[d->nsigs++] = s;
    Py_RETURN_TRUE;
}

static void drop_signatures(Dispatcher *d) {
    for (int k = 0; k < d->nsigs; k++) {
        Sig *s = d->sigs[k];
        if (s->busy) s->dead = 1;   /* freed when its last call returns */
        else sig_free(s);
        d->sigs[k] = NULL;
    }
    d->nsigs = 0;
}

static PyObject *clear_signatures(PyObject *self, PyObject *unused) {
    drop_signatures((Dispatcher *)self);
    Py_RETURN_NONE;
}

static PyObject *release_scratch(PyObject *self, PyObject *unused) {
    Dispatcher *d = (Dispatcher *)self;
    long long n = 0;
    for (int k = 0; k < d->nsigs; k++) {
        Sig *s = d->sigs[k];
        for (int j = 0; j < s->npool; j++) n += block_bytes(s->pool[j], s->nrec);
        scratch_release(s);
    }
    return PyLong_FromLongLong(n);
}

static PyObject *scratch_kept(PyObject *self, PyObject *unused) {
    Dispatcher *d = (Dispatcher *)self;
    long long n = 0;
    for (int k = 0; k < d->nsigs; k++) {
        Sig *s = d->sigs[k];
        for (int j = 0; j < s->npool; j++) n += block_bytes(s->pool[j], s->nrec);
    }
    return PyLong_FromLongLong(n);
}

static void dispatcher_dealloc(PyObject *self) {
    drop_signatures((Dispatcher *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef dispatcher_methods[] = {
    {"_add_signature", add_signature, METH_VARARGS, "register a native signature"},
    {"_clear_signatures", clear_signatures, METH_NOARGS, "forget the native signatures"},
    {"_release_fast_scratch", release_scratch, METH_NOARGS,
     "free the scratch memory kept by the native signatures; returns the bytes freed"},
    {"_fast_scratch_kept", scratch_kept, METH_NOARGS,
     "bytes of scratch memory the native signatures keep"},
    {NULL, NULL, 0, NULL}};

static PyMemberDef dispatcher_members[] = {
    {"_fast_calls", T_ULONGLONG, offsetof(Dispatcher, fast_calls), READONLY,
     "calls that took the native fast path"},
    {"_fast_signatures", T_INT, offsetof(Dispatcher, nsigs), READONLY,
     "native signatures registered"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cotan_fastcall.Dispatcher",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_call = dispatcher_call,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = dispatcher_dealloc,
    .tp_methods = dispatcher_methods,
    .tp_members = dispatcher_members,
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
    PyModule_AddIntConstant(m, "MAX_LEAVES", MAXLEAVES);
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
