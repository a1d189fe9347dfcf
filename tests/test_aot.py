"""cotan.aot: shared objects with a C ABI, called from C and from Python.

The reference is always the eager Python function; C programs are built
with the system compiler and print their results, which the tests parse.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cotan
from cotan.errors import ShapeError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler")

ALLOWED_NEEDED = ("libc.so", "libm.so", "libmvec.so", "ld-linux")


def relax(x, k):
    y = x
    for step in range(20):
        y = y + 0.05 * k * np.sin(y)
    return np.sum(y * y)


def layer(params, x):
    h = np.tanh(x @ params["w"] + params["b"])
    return {"sq": np.sum(h * h), "h": h}


X = np.linspace(0.1, 1.5, 8)
K = np.linspace(1.0, 2.0, 8)


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def build_c(tmp_path, source, libs):
    """Compile and run a C program linked against `libs` (AotFunctions)."""
    src = tmp_path / "prog.c"
    src.write_text(textwrap.dedent(source))
    exe = tmp_path / "prog"
    cmd = [CC, "-O1", "-o", str(exe), str(src)]
    for lib in libs:
        cmd += ["-I", os.path.dirname(lib.path), lib.path]
    cmd += [f"-Wl,-rpath,{os.path.dirname(lib.path)}" for lib in libs]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def numbers(line):
    return np.array([float(v) for v in line.split()[1:]])


@pytest.fixture(scope="module")
def relax_libs(tmp_path_factory):
    out = tmp_path_factory.mktemp("relax")
    f = cotan.aot.compile(relax, (X, K), output=str(out / "librelax.so"))
    df = cotan.aot.compile(cotan.grad(relax), (X, cotan.ShapeDtype((8,))),
                           output=str(out / "libgrad_relax.so"))
    return f, df


def test_handle_calls_library_like_the_function(relax_libs):
    f, df = relax_libs
    assert f(X, K) == pytest.approx(relax(X, K), rel=1e-12)
    np.testing.assert_allclose(df(X, K), cotan.grad(relax)(X, K), rtol=1e-12)


def test_header_written_beside_library(relax_libs):
    f, df = relax_libs
    assert f.header == f.path[:-3] + ".h" and os.path.isfile(f.header)
    text = open(df.header).read()
    assert "int grad_relax(const void *const *inputs, const int64_t *shapes" in text
    assert "grad_relax_last_error(void)" in text
    assert "#define GRAD_RELAX_NUM_INPUTS 2" in text


def test_c_program_calls_function_and_gradient(tmp_path, relax_libs):
    out = build_c(tmp_path, """
        #include <stdio.h>
        #include "librelax.h"
        #include "libgrad_relax.h"
        int main(void) {
            double x[8], k[8], e, dx[8];
            for (int i = 0; i < 8; i++) { x[i] = 0.1 + 1.4 * i / 7.0; k[i] = 1.0 + i / 7.0; }
            const void *in[] = {x, k};
            const int64_t shapes[] = {8, 8};
            void *out[] = {&e}, *gout[] = {dx};
            if (relax(in, shapes, out) || grad_relax(in, shapes, gout)) return 1;
            printf("f %.17g\\n", e);
            printf("df"); for (int i = 0; i < 8; i++) printf(" %.17g", dx[i]); printf("\\n");
            return 0;
        }
    """, relax_libs)
    lines = out.splitlines()
    assert numbers(lines[0])[0] == pytest.approx(relax(X, K), rel=1e-12)
    np.testing.assert_allclose(numbers(lines[1]), cotan.grad(relax)(X, K), rtol=1e-12)


def test_bad_shape_is_a_status_with_message_in_c(tmp_path, relax_libs):
    out = build_c(tmp_path, """
        #include <stdio.h>
        #include "librelax.h"
        int main(void) {
            double x[8] = {0}, k[8] = {0}, e;
            const void *in[] = {x, k};
            const int64_t shapes[] = {8, 5};
            void *out[] = {&e};
            int status = relax(in, shapes, out);
            printf("%d %s\\n", status, relax_last_error());
            status = relax(in, NULL, NULL);
            printf("%d %s\\n", status, relax_last_error());
            const int64_t good[] = {8, 8};
            status = relax(in, good, out);
            printf("%d [%s]\\n", status, relax_last_error());
            return 0;
        }
    """, relax_libs[:1])
    lines = out.splitlines()
    assert lines[0] == "1 relax: input 1 (k): expected shape (8,), got (5,)"
    assert lines[1].startswith("4 relax:") and "outputs" in lines[1]
    assert lines[2] == "0 []"      # a success clears the message


def test_bad_shape_through_handle_raises_shape_error(relax_libs):
    f, _ = relax_libs
    with pytest.raises(ShapeError, match=r"input 0 \(x\): expected shape \(8,\), got \(7,\)"):
        f(X[:7], K)
    with pytest.raises(TypeError, match="dtype float32"):
        f(X.astype(np.float32), K)


def test_library_needs_only_libc_libm_libmvec(relax_libs):
    if not shutil.which("readelf"):
        pytest.skip("needs readelf")
    for lib in relax_libs:
        libs = needed(lib.path)
        assert libs and all(n.startswith(ALLOWED_NEEDED) for n in libs), libs


def test_only_the_c_entry_points_are_exported(relax_libs):
    if not shutil.which("nm"):
        pytest.skip("needs nm")
    f, _ = relax_libs
    out = subprocess.run(["nm", "-D", "--defined-only", f.path], capture_output=True,
                         text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if " T " in line}
    assert "relax" in names and "relax_last_error" in names
    assert all(n == "relax" or n.startswith("relax_") for n in names), names


def test_pytrees_flatten_in_tree_util_order_and_signature_is_exported(tmp_path):
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    x = rng.normal(size=(5, 3))
    lib = cotan.aot.compile(layer, (params, x), output=str(tmp_path / "liblayer.so"))
    assert [leaf.path for leaf in lib.inputs] == ["params['b']", "params['w']", "x"]
    assert [leaf.path for leaf in lib.outputs] == ["result['h']", "result['sq']"]
    got, want = lib(params, x), layer(params, x)
    np.testing.assert_allclose(got["h"], want["h"], rtol=1e-12)
    assert got["sq"] == pytest.approx(want["sq"], rel=1e-12)
    out = build_c(tmp_path, """
        #include <stdio.h>
        #include <stdlib.h>
        #include "liblayer.h"
        int main(void) {
            printf("%d %d\\n", layer_num_inputs(), layer_num_outputs());
            for (int k = 0; k < layer_num_inputs(); k++) {
                printf("in %s %s", layer_input_name(k), layer_input_dtype(k));
                for (int j = 0; j < layer_input_rank(k); j++)
                    printf(" %lld", (long long)layer_input_shape(k)[j]);
                printf("\\n");
            }
            for (int k = 0; k < layer_num_outputs(); k++)
                printf("out %s %d %lld\\n", layer_output_name(k), layer_output_rank(k),
                       (long long)layer_output_size(k));
            printf("%d %p\\n", layer_input_rank(9), (void *)layer_output_shape(-1));
            return 0;
        }
    """, [lib])
    assert out.splitlines() == [
        "3 2", "in params['b'] float64 4", "in params['w'] float64 3 4", "in x float64 5 3",
        "out result['h'] 2 20", "out result['sq'] 0 1", "-1 (nil)"]


def test_matmul_does_not_need_blas(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(5, 3))

    def mm(a, b):
        return a @ b
    lib = cotan.aot.compile(mm, (a, b), output=str(tmp_path / "libmm.so"))
    np.testing.assert_allclose(lib(a, b), a @ b, rtol=1e-12)
    if shutil.which("readelf"):
        assert all(n.startswith(ALLOWED_NEEDED) for n in needed(lib.path))


def test_portable_cpu_uses_no_avx(tmp_path):
    def waves(x):
        return np.sin(x) * np.exp(-x)
    x = np.linspace(0, 3, 4096)
    lib = cotan.aot.compile(waves, (x,), output=str(tmp_path / "libwaves.so"),
                            cpu="x86-64-v2")
    np.testing.assert_allclose(lib(x), waves(x), rtol=1e-13)
    if shutil.which("objdump") and os.uname().machine == "x86_64":
        asm = subprocess.run(["objdump", "-d", lib.path], capture_output=True, text=True).stdout
        assert "%ymm" not in asm and "%zmm" not in asm
    if shutil.which("readelf"):
        assert not any(n.startswith("libmvec") for n in needed(lib.path))


def test_vmapped_function_compiles(tmp_path):
    def f(x, k):
        return np.sum(np.sin(x) * k)
    xs = np.linspace(0, 1, 12).reshape(3, 4)
    vf = cotan.vmap(f, in_axes=(0, None))
    lib = cotan.aot.compile(vf, (xs, K[:4]), output=str(tmp_path / "libvf.so"), name="vf")
    np.testing.assert_allclose(lib(xs, K[:4]), vf(xs, K[:4]), rtol=1e-12)


def test_scalars_and_static_arguments(tmp_path):
    def scaled(x, a, n):
        y = x
        for i in range(n):
            y = y * a
        return y
    lib = cotan.aot.compile(scaled, (X, 2.0, 3), output=str(tmp_path / "libscaled.so"),
                            static_argnums=(2,))
    assert [leaf.path for leaf in lib.inputs] == ["x", "a"]
    np.testing.assert_allclose(lib(X, 0.5, 3), scaled(X, 0.5, 3))


def test_wrong_number_of_example_arguments_is_an_error():
    with pytest.raises(TypeError, match="takes 2 arguments"):
        cotan.aot.compile(relax, (X,))
    with pytest.raises(TypeError, match="tuple of arguments"):
        cotan.aot.compile(relax, X)


def test_command_line(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text(textwrap.dedent("""
        import numpy as np

        def f(x, w):
            return np.sum(np.tanh(w.T @ x))
    """))
    env = dict(os.environ, PYTHONPATH=ROOT)
    for extra, name in (([], "f"), (["--grad", "--name", "df"], "df")):
        out = tmp_path / f"lib{name}.so"
        proc = subprocess.run([sys.executable, "-m", "cotan", "aot", f"{module}:f",
                               "--arg", "f64[16]", "--arg", "f64[16,3]", "-o", str(out),
                               "--cpu", "x86-64-v2"] + extra,
                              capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert out.exists() and (tmp_path / f"lib{name}.h").exists()
        assert "input 1: w float64[16, 3]" in proc.stdout
        assert f"int {name}(const void" in (tmp_path / f"lib{name}.h").read_text()


def test_command_line_rejects_bad_arg_spec(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cotan", "aot", "x.py:f", "--arg", "f64[a]"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                          cwd=tmp_path)
    assert proc.returncode == 1
    assert "write a dtype and a shape" in proc.stderr


def test_example_builds_and_matches_python(tmp_path):
    if not shutil.which("make"):
        pytest.skip("needs make")
    work = tmp_path / "aot"
    shutil.copytree(os.path.join(ROOT, "examples", "aot"), work)
    proc = subprocess.run(["make", "check", f"COTAN_ROOT={ROOT}", f"PYTHON={sys.executable}"],
                          cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith(("relax ", "grad_relax "))]
    c_value, c_grad, py_value, py_grad = lines
    assert numbers(c_value)[0] == pytest.approx(numbers(py_value)[0], rel=1e-12)
    np.testing.assert_allclose(numbers(c_grad), numbers(py_grad), rtol=1e-12)
    assert "bad shape: status 1: relax: input 0 (x): expected shape (8,), got (7,)" \
        in proc.stdout
