using Sbp.Backends.Cpu.Gemm;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    int _gemmThreads = Environment.ProcessorCount;

    /// <summary>
    /// Most threads one GEMM uses (default: all processors). Results do not depend on it: every
    /// element of C is summed in the same order whatever the split (see <see cref="SgemmDriver"/>).
    /// </summary>
    public int GemmThreads
    {
        get => _gemmThreads;
        set => _gemmThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "CpuBackend.GemmThreads must be >= 1.");
    }

    /// <summary>
    /// Row-major strided batched SGEMM: packed panels and a register-tiled micro-kernel
    /// (AVX2/FMA, portable fallback), parallel over tiles of C; packing buffers are workspace
    /// from the pool. See <see cref="SgemmDriver"/> for the design.
    /// </summary>
    public bool RoundsGemmOperands => true;

    public void Gemm(in GemmSpec g, Tensor a, Tensor b, Tensor c)
    {
        if (g.M == 0 || g.N == 0 || g.Batch == 0) return;
        GemmSpec.CheckTypes(a, b, c);
        if (a.DType.Is16Bit() || b.DType.Is16Bit())   // (a 16-bit C has the operands' 16-bit type: CheckTypes)
        {
            GemmHalf(g, a, b, c);
            return;
        }
        int threads = _gemmThreads;
        using var workspace = Workspace(OpLabel.Current, c.Device, SgemmDriver.WorkspaceFloats(g, threads));
        SgemmDriver.Run(g, a.F + g.OffsetA, b.F + g.OffsetB, c.F + g.OffsetC, workspace is null ? null : workspace.F, threads);
    }

    /// <summary>
    /// 16-bit A and B (cuBLAS GemmEx with CUBLAS_COMPUTE_32F): the same Float32 GEMM on the exact widenings of A and B
    /// (and of C where beta reads it), a 16-bit C rounded to nearest even (block by block as they complete). A Float32 operand beside a 16-bit one
    /// is rounded to that type block by block while packing (autocast's parameters: no cast pass, no 16-bit copy).
    /// </summary>
    void GemmHalf(in GemmSpec g, Tensor a, Tensor b, Tensor c)
    {
        string label = OpLabel.Current;
        var type = a.DType.Is16Bit() ? a.DType : b.DType;
        Tensor Wide(Tensor t)
        {
            var w = Workspace(label, t.Device, t.Numel)!;
            if (t.DType.Is16Bit()) Cast(t, w);
            else HalfPrecision.Round(new ReadOnlySpan<float>(t.F, checked((int)t.Numel)), new Span<float>(w.F, (int)t.Numel), type);
            return w;
        }
        using var wc = !c.DType.Is16Bit() ? null : g.Beta != 0 ? Wide(c) : Workspace(label, c.Device, c.Numel);
        var cf = wc ?? c;
        if (g.K > 0 && (g.StrideC != 0 || g.Batch == 1))
        {
            // 16-bit A and B widened block by block while packing (SgemmDriver.RunHalf): read once, at 2 bytes an element
            int threads = _gemmThreads;
            using var workspace = Workspace(label, c.Device, SgemmDriver.WorkspaceFloats(g, threads, half: true));
            // a 16-bit C: each block rounded into it from the Float32 scratch as the block completes (in cache)
            SgemmDriver.RunHalf(g, Element(a, g.OffsetA), Element(b, g.OffsetB), type, cf.F + g.OffsetC, workspace is null ? null : workspace.F, threads,
                roundA: !a.DType.Is16Bit(), roundB: !b.DType.Is16Bit(), c16: wc is null ? null : (ushort*)c.Pointer + g.OffsetC);
            return;
        }
        using (var wa = Wide(a))
        using (var wb = Wide(b))
            Gemm(g, wa, wb, cf);
        if (wc is not null) Cast(wc, c);
    }

    /// <summary>The address of element <paramref name="offset"/> of t (2 or 4 bytes an element).</summary>
    static void* Element(Tensor t, long offset) => (byte*)t.Pointer + offset * t.DType.Size();

    /// <summary>
    /// Scratch of <paramref name="floats"/> floats from the pool, counted as workspace of <paramref name="label"/>'s op,
    /// outside any scope; null for none.
    /// </summary>
    static Tensor? Workspace(string label, Device device, long floats) =>
        floats > 0 ? Tensor.Empty(label, new Shape(checked((int)floats)), device, DType.Float32, MemoryCategory.Workspace).DetachFromScope() : null;
}
