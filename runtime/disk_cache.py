"""The on-disk cache of compiled functions (`~/.cache/cotan`, `COTAN_CACHE_DIR`).

Owns reading and writing cache entries: an entry is the object code
MCJIT generated (loaded back without optimization or code generation) and
the optimized LLVM IR (the fallback) of one (core-form source, captured constants, signature, target CPU, cotan
version) plus what the caller needs to use it, pickled with a checksum and
written atomically (temporary file + rename), so a second process skips
inference, emission and optimization.  A corrupt or stale entry (bad
checksum, other key, unpicklable) is ignored and rebuilt, never loaded.
`COTAN_CACHE_DIR=""` or `COTAN_DISABLE_DISK_CACHE=1` turns it off.
Must not compile anything.
"""

import hashlib
import os
import pickle
import tempfile

MAGIC = b"cotan-jit-1\n"


def cache_dir():
    if os.environ.get("COTAN_DISABLE_DISK_CACHE"):
        return None
    d = os.environ.get("COTAN_CACHE_DIR")
    if d == "":
        return None
    return d or os.path.join(os.path.expanduser("~"), ".cache", "cotan")


def entry_key(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


_compiler_hash = []


def compiler_hash():
    """Hash of the compiler's own source (codegen/ and this runtime), so an
    entry written by another version of the backend is never loaded."""
    if not _compiler_hash:
        here = os.path.dirname(os.path.abspath(__file__))
        folders = [os.path.join(os.path.dirname(here), "codegen"), here]
        h = hashlib.sha256()
        for folder in folders:
            # recursive: a backend folder under codegen/ changes code too
            for root, dirs, files in sorted(os.walk(folder)):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(".py"):
                        path = os.path.join(root, name)
                        with open(path, "rb") as f:
                            h.update(os.path.relpath(path, folder).encode() + f.read())
        _compiler_hash.append(h.hexdigest())
    return _compiler_hash[0]


def load(key):
    d = cache_dir()
    if d is None:
        return None
    path = os.path.join(d, key[:2], key + ".bin")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            return None
        digest, payload = data[len(MAGIC):len(MAGIC) + 64], data[len(MAGIC) + 64:]
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None
        entry = pickle.loads(payload)
        if entry.get("key") != key:
            return None
        return entry
    except Exception:  # a damaged entry is rebuilt, never trusted
        return None


def store(key, entry):
    d = cache_dir()
    if d is None:
        return
    entry = dict(entry, key=key)
    try:
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        data = MAGIC + hashlib.sha256(payload).hexdigest().encode() + payload
        folder = os.path.join(d, key[:2])
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(folder, key + ".bin"))
    except (OSError, pickle.PicklingError, AttributeError, TypeError):
        pass    # an entry that cannot be stored (a local pytree class) is rebuilt
