using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    /// <summary>
    /// Float32 / BFloat16 / Float16 conversions (kernels/cast.ptx): bfloat16 rounding as integer arithmetic on the
    /// bits (the CPU's bits exactly, NaN 0x7FC0), float16 by cvt.rn (a NaN becomes the hardware's canonical NaN);
    /// 16 to 16 bits goes through a Float32 temporary (exact).
    /// </summary>
    public void Cast(Tensor source, Tensor destination)
    {
        if (source.Numel == 0) return;
        DType from = source.DType, to = destination.DType;
        if (from != DType.Float32 && to != DType.Float32)
        {
            using var wide = Tensor.Empty(OpLabel.Current, source.Shape, source.Device, DType.Float32, MemoryCategory.Workspace);
            Cast(source, wide);
            Cast(wide, destination);
            return;
        }
        var kernel = (from, to) switch
        {
            (DType.Float32, DType.BFloat16) => PtxKernels.ToBf16F32,
            (DType.BFloat16, DType.Float32) => PtxKernels.ToF32Bf16,
            (DType.Float32, DType.Float16) => PtxKernels.ToF16F32,
            (DType.Float16, DType.Float32) => PtxKernels.ToF32F16,
            _ => throw new ArgumentException($"Cast: {from} to {to} is not a cast between Float32, BFloat16 and Float16."),
        };
        Launch(kernel, source.Numel, Ptr(source), Ptr(destination), U32(source.Numel));
    }
}
