"""Linking an ahead-of-time library with the system C compiler.

Owns `link_shared(...)`: writes the object code, the wrapper source and
the header, runs `cc` (or `$CC`) to link `lib<name>.so` with only libc,
libm and (where the code calls it) libmvec, refusing undefined symbols at
link time, and `needed_libraries(path)` (the ELF NEEDED entries, via
`readelf -d`) for checks.  Must not build IR (aot_emit.py) nor text
(aot_cabi.py).
"""

import os
import re
import shutil
import subprocess
import tempfile

from ..errors import CompileError


def compiler():
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or \
        shutil.which("clang")
    if not cc:
        raise CompileError("aot: no C compiler found (looked for $CC, cc, gcc, clang); "
                           "install one to link shared objects")
    return cc


def link_shared(output, header_path, name, object_code, wrapper_c, header_c, uses_mvec):
    """Write `header_path` and link `output` from the object and wrapper."""
    output = os.path.abspath(output)
    folder = os.path.dirname(output)
    os.makedirs(folder, exist_ok=True)
    with open(header_path, "w") as f:
        f.write(header_c)
    with tempfile.TemporaryDirectory(prefix="cotan_aot_") as tmp:
        obj = os.path.join(tmp, f"{name}_native.o")
        src = os.path.join(tmp, f"{name}_abi.c")
        with open(obj, "wb") as f:
            f.write(object_code)
        with open(src, "w") as f:
            f.write(wrapper_c)
        with open(os.path.join(tmp, f"{name}.h"), "w") as f:
            f.write(header_c)
        # link to a fresh file, then rename: a process that already loaded
        # an older library of that path keeps its mapping intact, and a new
        # dlopen sees a new file (a new inode) instead of the cached one
        tmp_out = os.path.join(tmp, os.path.basename(output))
        libs = ["-lm"] + (["-lmvec"] if uses_mvec else []) + ["-lpthread"]
        cmd = [compiler(), "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-std=gnu11",
               "-I", tmp, "-o", tmp_out, src, obj, "-Wl,--no-undefined",
               "-Wl,--as-needed"] + libs
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"aot: linking {os.path.basename(output)} failed:\n"
                               f"$ {' '.join(cmd)}\n{proc.stderr.strip()}")
        shutil.move(tmp_out, output + ".tmp")
        os.replace(output + ".tmp", output)
    return output


def needed_libraries(path):
    """The NEEDED entries of a shared object (`readelf -d`)."""
    readelf = shutil.which("readelf")
    if not readelf:
        return None
    out = subprocess.run([readelf, "-d", path], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
