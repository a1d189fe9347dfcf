"""Multi-process pmap through MPI: `mpiexec -n P` starts
tests/test_distributed_worker.py, whose processes each map over their local
devices and check collectives and a gradient all-reduce bit for bit against
the same pmap run in one process over all devices.  Skipped only when no MPI
is installed (`pip install mpi4py mpich`)."""

import os
import shutil
import subprocess
import sys

import pytest

import cotan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "test_distributed_worker.py")


def mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install mpi4py mpich)")
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = here if os.path.exists(here) else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec found (pip install mpich)")
    return exe


def launch(script, processes, local_devices, timeout=90, extra_env=None, args=()):
    env = dict(os.environ)
    env["COTAN_NUM_DEVICES"] = str(local_devices)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    proc = subprocess.run([mpiexec(), "-n", str(processes), sys.executable, script, *args],
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("processes,local", [(2, 2), (4, 1)])
def test_collectives_and_gradient_allreduce_match_one_process(processes, local):
    out = launch(WORKER, processes, local)
    # the processes share one stdout: their lines may interleave mid-line
    for p in range(processes):
        assert out.count(f"process {p} of {processes}: ok") == 1, out


def test_eager_pmap_across_processes():
    out = launch(WORKER, 2, 1, extra_env={"WORKER_JIT": "0"})
    assert out.count(": ok") == 2


def test_without_initialize_a_process_is_alone():
    assert cotan.distributed.process_count() == 1
    assert cotan.distributed.process_index() == 0
    assert not cotan.distributed.is_initialized()


def test_data_parallel_example_under_mpiexec():
    out = launch(os.path.join(ROOT, "examples", "data_parallel.py"), 2, 2)
    lines = [line for line in out.splitlines() if "largest parameter difference" in line]
    assert len(lines) == 2 and all("4 devices" in line for line in lines)
