"""The disk cache's compiler hash covers every compiler module, backend
folders included, so an entry written by other compiler code is never
loaded."""

import importlib
import os
import shutil

from cotan.runtime import disk_cache


def test_compiler_hash_changes_with_a_file_in_a_backend_folder(tmp_path, monkeypatch):
    here = os.path.dirname(os.path.abspath(disk_cache.__file__))
    root = tmp_path / "pkg"
    shutil.copytree(os.path.join(os.path.dirname(here), "codegen"), root / "codegen",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(here, root / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    fake = str(root / "runtime" / "disk_cache.py")
    mod = importlib.util.module_from_spec(importlib.util.spec_from_file_location("dc", fake))
    mod.__spec__.loader.exec_module(mod)
    before = mod.compiler_hash()
    nested = root / "codegen" / "xla" / "lowerings.py"
    assert nested.exists()
    nested.write_text(nested.read_text() + "\n# changed\n")
    mod._compiler_hash.clear()
    assert mod.compiler_hash() != before
