"""A cache prefetch hint usable inside kernels (numba has no such function).

A hint, unlike a load that touches the data ahead, does not hold back the instructions after
it while the line is on its way, so the kernel keeps working on the current packet.
"""

from __future__ import annotations

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# The intrinsic is named after its pointer type: typed (i8*) up to LLVM 16, which older
# llvmlite builds (numba >= 0.60 is allowed) link against; opaque from LLVM 17 on.
_INTRINSIC = "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 17 else "llvm.prefetch.p0i8"


def _hint(rw: int):
    """Code generator of a prefetch hint: ``rw`` 0 asks for the line to read, 1 to write."""

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        if isinstance(signature.args[1], types.BaseTuple):
            indices = cgutils.unpack_tuple(builder, args[1])
        else:
            indices = [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, indices, wraparound=False)
        i32 = ir.IntType(32)
        ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _INTRINSIC)
        # (address, 0 = read / 1 = write, 3 = highest locality, 1 = data cache)
        builder.call(fn, [ptr, ir.Constant(i32, rw), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """Ask for the cache line holding ``arr[idx]`` to read it (keep in all levels); ``idx`` is
    an integer or, for an array of several dimensions, a tuple of integers."""
    return types.void(arr, idx), _hint(0)


@intrinsic
def prefetch_write(typingctx, arr, idx):
    """Ask for the cache line holding ``arr[idx]`` to write it: a kernel filling a large
    output otherwise waits for each new line to be fetched before its stores can retire."""
    return types.void(arr, idx), _hint(1)
