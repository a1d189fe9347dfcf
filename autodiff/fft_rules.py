"""Rules of the primitives added for issue 16's NumPy coverage.

Owns the JVP, VJP and batching rules, and the declared absences (no llvm
lowering yet, no derivative where none is defined), of the primitives in
`runtime/fft_ops.py` and `runtime/more_ops.py`: the FFTs and their
transposes, the special functions of `cotan.scipy.special`, the random
number primitives of `cotan.random`, `unique_plan` and `eig`.  Rules are written in the same template language as
`autodiff/jvp_rules.py` (`d[x]` is the tangent of x) and
`autodiff/vjp_rules.py` (`dx = ...` is x's cotangent contribution) and
are attached to the table by name, as those modules attach theirs; their
bodies call only primitives, so derivatives of derivatives work.
Importing this module attaches everything (`cotan.numpy` imports it once
at start-up).  Must not hold kernels (runtime/) or lowerings (codegen/).
"""

from ..runtime.table import PRIMITIVES, declare_no_rule
from ..runtime.fft_ops import FFT_PRIMITIVES
from ..runtime.more_ops import RANDOM_PRIMITIVES, SPECIAL_PRIMITIVES

# `d[x]` in JVP bodies; never evaluated (the body is spliced, not run)
d = None


from .rule_registry import jvp as _jvp, vjp_rule as _vjp  # noqa: E402


def _batching(*names):
    def attach(rule):
        for name in names:
            PRIMITIVES[name].batch_rule = rule
        return rule
    return attach


# -- FFTs: linear, so the tangent is the transform of the tangent and the
# -- cotangent is the transpose applied to the cotangent

@_jvp("fft")
def _(z, a, *, n=None, axis=-1, norm=None, out_dtype=None):
    d[z] = fft(d[a], n=n, axis=axis, norm=norm, out_dtype=out_dtype)


@_jvp("ifft")
def _(z, a, *, n=None, axis=-1, norm=None, out_dtype=None):
    d[z] = ifft(d[a], n=n, axis=axis, norm=norm, out_dtype=out_dtype)


@_jvp("rfft")
def _(z, a, *, n=None, axis=-1, norm=None, out_dtype=None):
    d[z] = rfft(d[a], n=n, axis=axis, norm=norm, out_dtype=out_dtype)


@_jvp("irfft")
def _(z, a, *, n=None, axis=-1, norm=None):
    d[z] = irfft(d[a], n=n, axis=axis, norm=norm)


@_jvp("fft_transpose")
def _(z, u, m, in_dtype, *, n=None, axis=-1, norm=None):
    d[z] = fft_transpose(d[u], m, in_dtype, n=n, axis=axis, norm=norm)


@_jvp("ifft_transpose")
def _(z, u, m, in_dtype, *, n=None, axis=-1, norm=None):
    d[z] = ifft_transpose(d[u], m, in_dtype, n=n, axis=axis, norm=norm)


@_jvp("rfft_transpose")
def _(z, u, m, *, n=None, axis=-1, norm=None):
    d[z] = rfft_transpose(d[u], m, n=n, axis=axis, norm=norm)


@_jvp("irfft_transpose")
def _(z, u, m, in_dtype, *, n=None, axis=-1, norm=None):
    d[z] = irfft_transpose(d[u], m, in_dtype, n=n, axis=axis, norm=norm)


@_vjp("fft")
def _(g, z, a, n=None, axis=-1, norm=None, out_dtype=None):
    da = fft_transpose(g, shape(a)[axis], dtype(a), n=n, axis=axis, norm=norm)


@_vjp("ifft")
def _(g, z, a, n=None, axis=-1, norm=None, out_dtype=None):
    da = ifft_transpose(g, shape(a)[axis], dtype(a), n=n, axis=axis, norm=norm)


@_vjp("rfft")
def _(g, z, a, n=None, axis=-1, norm=None, out_dtype=None):
    da = rfft_transpose(g, shape(a)[axis], n=n, axis=axis, norm=norm)


@_vjp("irfft")
def _(g, z, a, n=None, axis=-1, norm=None):
    da = irfft_transpose(g, shape(a)[axis], dtype(a), n=n, axis=axis, norm=norm)


@_vjp("fft_transpose")
def _(g, z, u, m, in_dtype, n=None, axis=-1, norm=None):
    du = fft(g, n=n, axis=axis, norm=norm, out_dtype=dtype(u))


@_vjp("ifft_transpose")
def _(g, z, u, m, in_dtype, n=None, axis=-1, norm=None):
    du = ifft(g, n=n, axis=axis, norm=norm, out_dtype=dtype(u))


@_vjp("rfft_transpose")
def _(g, z, u, m, n=None, axis=-1, norm=None):
    du = rfft(g, n=n, axis=axis, norm=norm, out_dtype=dtype(u))


@_vjp("irfft_transpose")
def _(g, z, u, m, in_dtype, n=None, axis=-1, norm=None):
    du = irfft(g, n=n, axis=axis, norm=norm)


@_batching(*FFT_PRIMITIVES)
def fft_batching(c):
    """One axis of each lane is transformed: with the lanes stacked in front
    the same call does it, the axis moved past the batch axis (pocketfft
    loops over the other axes itself)."""
    from .batching import Call
    if not c.batched(0) or any(c.batched(i) for i in range(1, len(c.args))) \
            or any(_batched_state(s) for s in c.kw_states.values()):
        return c.map_lanes()
    axis = c.kwargs.get("axis")
    nd = Call("ndim", [c.args[0]])
    if axis is None:
        from .batching import Const
        axis = Const(-1)
    c.assign(c.call(kwargs={"axis": Call("axes_after_batch", [axis, nd])}))
    return True


def _batched_state(s):
    from .batching import any_batched
    return any_batched(s)


_NOT_COMPILED = ("runs on NumPy's pocketfft, which cotan does not compile yet: call "
                 "numpy.fft.{name} outside cotan.jit (jit the code before and after it)")
for _name in FFT_PRIMITIVES:
    declare_no_rule(_name, "llvm", _NOT_COMPILED.format(name=_name.replace("_transpose", "")))


# -- special functions (cotan.scipy.special) ----------------------------------

# the primitives exist only where SciPy is installed (runtime/more_ops.py)
if SPECIAL_PRIMITIVES:
    @_jvp("erf")
    def _(z, x):
        d[z] = d[x] * (1.1283791670955126 * exp(-(x * x)))


    @_vjp("erf")
    def _(g, z, x):
        dx = g * (1.1283791670955126 * exp(-(x * x)))


    @_jvp("gammaln")
    def _(z, x):
        d[z] = d[x] * polygamma(0, x)


    @_vjp("gammaln")
    def _(g, z, x):
        dx = g * polygamma(0, x)


    @_jvp("polygamma")
    def _(z, k, x):
        d[z] = d[x] * polygamma(k + 1, x)


    @_vjp("polygamma")
    def _(g, z, k, x):
        dx = g * polygamma(k + 1, x)


@_batching(*SPECIAL_PRIMITIVES)
def special_batching(c):
    """Elementwise: the batched operands broadcast against each other."""
    from .batching_rules import elementwise
    return elementwise(c)


for _name in SPECIAL_PRIMITIVES:
    declare_no_rule(_name, "llvm", f"scipy.special.{_name} has no compiled kernel yet: call "
                    "it outside cotan.jit")


# -- random numbers, unique, eig, frexp: lane by lane under vmap ---------------

@_batching(*RANDOM_PRIMITIVES, "unique_plan", "eig")
def lane_by_lane(c):
    """Each lane draws from its own key (or factors its own matrix): run the
    primitive once per lane; a vmap over keys equals a Python loop."""
    return c.map_lanes()


for _name in RANDOM_PRIMITIVES:
    declare_no_rule(_name, "llvm", "cotan.random draws with NumPy's Philox generator, which "
                    "cotan does not compile: draw the numbers outside cotan.jit and pass "
                    "them in as arguments")
declare_no_rule("unique_plan", "llvm", "numpy.unique's output length depends on the "
                "values: call it outside cotan.jit")
declare_no_rule("eig", "llvm", "numpy.linalg.eig has no compiled kernel: call it outside "
                "cotan.jit (or use numpy.linalg.eigh for symmetric matrices)")
_EIG_WHY = ("numpy.linalg.eig's eigenvalues may be complex, which cotan's derivatives do not "
            "carry yet; differentiate numpy.linalg.eigh (symmetric matrices) instead, or "
            "wrap the call in cotan.stop_gradient")
declare_no_rule("eig", "jvp", _EIG_WHY)
declare_no_rule("eig", "vjp", _EIG_WHY)
