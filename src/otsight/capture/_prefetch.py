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


@intrinsic
def prefetch(typingctx, arr, idx):
    """Ask for the cache line holding ``arr[idx]`` (read, keep in all levels); ``idx`` is an
    integer or, for an array of several dimensions, a tuple of integers."""
    sig = types.void(arr, idx)

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
        # (address, 0 = read, 3 = highest locality, 1 = data cache)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
