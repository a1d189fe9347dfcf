"""`cotan.distributed`: many processes (hosts) through MPI.

Owns the process group: `initialize()` (on mpi4py's COMM_WORLD, so the
processes are started by `mpiexec -n P python3 script.py`),
`process_index()`, `process_count()`, `is_initialized()`, `shutdown()`, and
the one exchange cross-process collectives use (`exchange`).

Once initialized, every `cotan.pmap` spans all processes: each process maps
over its local devices and the mapped axis has `process_count() *
local_device_count()` shards, numbered process by process
(`cotan.devices()` lists them all, `cotan.local_devices()` this process's).
Every process must call the same pmaps, with the same local shard count, in
the same order, as with any MPI program.

A collective gathers every shard's value on every process (`MPI_Allgather`
of the local contributions, after a small pickled allgather of their
shapes and dtypes that checks every shard called the same collective) and
reduces in shard order, so the result is bit-identical to the same pmap
run in one process with as many devices: MPI's own `Allreduce` would sum in
an order of its choosing.  Needs the `mpi` extra (mpi4py and an MPI
library, e.g. the `mpich` wheel).  Must not start threads or know about
pmap's arguments.
"""

import numpy as np

_state = {"comm": None}

__all__ = ["initialize", "shutdown", "is_initialized", "process_index", "process_count"]


def initialize(coordinator_address=None, num_processes=None, process_id=None):
    """Join the process group of an `mpiexec` launch.

    The arguments are JAX's; MPI already knows them, so given ones are only
    checked against it.  Calling it again is a no-op.
    """
    if _state["comm"] is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("cotan.distributed.initialize needs mpi4py and an MPI library: "
                          "pip install 'cotan[mpi]' (or pip install mpi4py mpich), then start "
                          "the processes with mpiexec -n <count> python3 script.py") from e
    comm = MPI.COMM_WORLD
    if num_processes is not None and num_processes != comm.Get_size():
        raise ValueError(f"cotan.distributed.initialize: num_processes={num_processes} but "
                         f"mpiexec started {comm.Get_size()} processes")
    if process_id is not None and process_id != comm.Get_rank():
        raise ValueError(f"cotan.distributed.initialize: process_id={process_id} but MPI "
                         f"gave this process rank {comm.Get_rank()}")
    _state["comm"] = comm


def shutdown():
    """Leave the process group (pmaps become local again)."""
    _state["comm"] = None


def is_initialized():
    return _state["comm"] is not None


def communicator():
    """The mpi4py communicator, or None when not initialized."""
    return _state["comm"]


def process_index():
    comm = _state["comm"]
    return comm.Get_rank() if comm is not None else 0


def process_count():
    comm = _state["comm"]
    return comm.Get_size() if comm is not None else 1


def exchange(comm, items):
    """`items`: this process's local shards' (what, array) pairs, in shard
    order.  Returns every process's pairs, concatenated in process order."""
    whats = comm.allgather([(w, a.shape, a.dtype.str) for w, a in items])
    flat = [x for part in whats for x in part]
    lengths = {len(part) for part in whats}
    if len(lengths) != 1:
        from .runtime.collectives import CollectiveMismatchError
        raise CollectiveMismatchError(
            f"the processes map over different numbers of local shards "
            f"({[len(p) for p in whats]}); give every process the same number of devices")
    shapes = {(s, d) for _, s, d in flat}
    if len(shapes) != 1:
        # mismatched collectives: hand back the descriptions, the caller names them
        return [(w, None) for w, _, _ in flat]
    (shape, dt), = shapes
    local = np.ascontiguousarray(items[0][1])[None] if len(items) == 1 else \
        np.ascontiguousarray(np.stack([a for _, a in items]))
    out = np.empty((comm.Get_size(),) + local.shape, dtype=np.dtype(dt))
    comm.Allgather(local, out)
    out = out.reshape((-1,) + tuple(shape))
    return [(w, out[k]) for k, (w, _, _) in enumerate(flat)]
