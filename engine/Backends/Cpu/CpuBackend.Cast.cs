using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Float32 / BFloat16 / Float16 conversions (<see cref="HalfPrecision"/>), in parallel chunks; 16 to 16 bits goes through float (exact).</summary>
    public void Cast(Tensor source, Tensor destination)
    {
        DType from = source.DType, to = destination.DType;
        nint s = source.Pointer, d = destination.Pointer;
        CpuLoops.For(source.Numel, 1, (a, b) =>
        {
            int n = (int)(b - a);
            if (from == DType.Float32)
                HalfPrecision.Narrow(new ReadOnlySpan<float>((float*)s + a, n), new Span<ushort>((ushort*)d + a, n), to);
            else if (to == DType.Float32)
                HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)s + a, n), new Span<float>((float*)d + a, n), from);
            else
            {
                var wide = new float[n];
                HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)s + a, n), wide, from);
                HalfPrecision.Narrow(wide, new Span<ushort>((ushort*)d + a, n), to);
            }
        });
    }
}
