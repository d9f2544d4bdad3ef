"""How feagi-burst compiles its CPU kernels (numba), and the few LLVM intrinsics they use.

Kernels are compiled in nopython mode without fastmath, so every f32 operation is the one written,
rounded as numpy and the GPU round it (no reassociation, no fused multiply-add). They are cached on
disk (`cache=True`): a machine compiles them once (tens of seconds), later runs load them in well
under a second. The cache sits in the package's `__pycache__` when that is writable, otherwise in
`$XDG_CACHE_HOME/feagi-burst/numba` (or `~/.cache/...`, or the temp directory); NUMBA_CACHE_DIR
overrides both. Used by the CPU backend's burst kernels (cpu_kernels.py, cpu_lif.py), its STDP
(cpu_plasticity.py) and the brain-building kernels (feagi_burst/build_kernels.py).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def cache_dir(here: Path = Path(__file__).parent) -> str | None:
    """Where compiled kernels go when numba's default (`here`/__pycache__) is not writable, e.g.
    in a read-only site-packages; None: numba's default, or NUMBA_CACHE_DIR when that is set."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None  # the user's choice; numba reads it itself
    try:
        (here / "__pycache__").mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=here / "__pycache__").close()
        return None
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for root in (Path(base) / "feagi-burst" / "numba",
                 Path(tempfile.gettempdir()) / f"feagi-burst-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            root.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=root).close()
            return str(root)
        except OSError:
            continue
    return None


CACHE_DIR = cache_dir()


def kernel(parallel: bool = False):  # type: ignore[no-untyped-def]
    """njit, cached (in CACHE_DIR when set: only for our kernels), nopython, exact arithmetic."""
    def wrap(fn):  # type: ignore[no-untyped-def]
        saved = numba.config.CACHE_DIR
        if CACHE_DIR:
            numba.config.CACHE_DIR = CACHE_DIR  # read once, when the dispatcher finds its cache
        try:
            return numba.njit(cache=True, parallel=parallel, nogil=True, error_model="numpy")(fn)
        except RuntimeError:  # nowhere writable to cache: compile in every process
            return numba.njit(parallel=parallel, nogil=True, error_model="numpy")(fn)
        finally:
            numba.config.CACHE_DIR = saved
    return wrap


helper = numba.njit(nogil=True, error_model="numpy", inline="always")  # inlined: no call, no refcounts

# LLVM 15+ names its pointer-overloaded intrinsics by address space only
_PREFETCH = "llvm.prefetch.p0" if llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """Ask for the cache line of arr[idx] ahead of its use (no fault, no wait, no effect on results)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32]),
                                            _PREFETCH)
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])  # read, keep in all levels, data cache
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def cttz(typingctx, x):  # type: ignore[no-untyped-def]
    """Count of trailing zero bits of a non-zero u64 (the position of its lowest set bit)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        i64 = ir.IntType(64)
        fn = builder.module.declare_intrinsic("llvm.cttz", [i64], ir.FunctionType(i64, [i64, ir.IntType(1)]))
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])  # 1: zero input is undefined
    return sig, codegen


def threads() -> int:
    """Threads the parallel kernels split their work over (numba's, NUMBA_NUM_THREADS)."""
    return max(1, numba.get_num_threads())
