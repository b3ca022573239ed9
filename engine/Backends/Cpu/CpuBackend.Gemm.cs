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
    public void Gemm(in GemmSpec g, Tensor a, Tensor b, Tensor c)
    {
        if (g.M == 0 || g.N == 0 || g.Batch == 0) return;
        int threads = _gemmThreads;
        using var workspace = Workspace(OpLabel.Current, c.Device, SgemmDriver.WorkspaceFloats(g, threads));
        SgemmDriver.Run(g, a.F + g.OffsetA, b.F + g.OffsetB, c.F + g.OffsetC, workspace is null ? null : workspace.F, threads);
    }

    /// <summary>
    /// Scratch of <paramref name="floats"/> floats from the pool, counted as workspace of <paramref name="label"/>'s op,
    /// outside any scope; null for none.
    /// </summary>
    static Tensor? Workspace(string label, Device device, long floats) =>
        floats > 0 ? Tensor.Empty(label, new Shape(checked((int)floats)), device, DType.Float32, MemoryCategory.Workspace).DetachFromScope() : null;
}
