using Sbp.Kernels.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/layernorm.ptx against CpuBackend.LayerNormForward / LayerNormBackward.</summary>
public sealed class LayerNormKernelTests : KernelTest
{
    const float Eps = 1e-5f;

    // rows, cols, affine (weight and bias), block, max blocks
    [TestCase(1, 1, true, 32u, 1u)]
    [TestCase(3, 7, true, 32u, 2u)]
    [TestCase(5, 33, false, 64u, 2u)]
    [TestCase(4, 100, true, 96u, 3u)]
    [TestCase(3, 257, true, 128u, 2u)]
    public void ForwardMatchesCpu(int rows, int cols, bool affine, uint block, uint maxBlocks)
    {
        var x = Rand.Normal(1, rows * cols, 2f).Select(v => v + 1.5f).ToArray();
        var w = affine ? Rand.Uniform(2, cols, 0.5f, 1.5f) : null;
        var b = affine ? Rand.Uniform(3, cols) : null;
        var (y, mean, rstd) = (Empty(rows, cols), Empty(rows), Empty(rows));
        Device.Backend.LayerNormForward(T(x, rows, cols), Opt(w, cols), Opt(b, cols), Eps, y, mean, rstd);

        ulong gy = Gpu.Poisoned(rows * cols), gm = Gpu.Poisoned(rows), gr = Gpu.Poisoned(rows);
        Gpu.Launch("layer_norm_f32", Math.Min((uint)rows, maxBlocks), block,
            Ptr(Gpu.Upload(x)), Ptr(Up(w)), Ptr(Up(b)), Ptr(gy), Ptr(gm), Ptr(gr), U32(rows), U32(cols), F32(Eps), U32(0), U32(0));
        Check.Close(mean.ToArray(), Gpu.Download(gm, rows), 1e-5, 1e-6, "layer_norm_f32 mean");
        Check.Close(rstd.ToArray(), Gpu.Download(gr, rows), 1e-5, 1e-6, "layer_norm_f32 rstd");
        Check.Close(y.ToArray(), Gpu.Download(gy, rows * cols), 1e-5, 1e-5, "layer_norm_f32 y");
    }

    [Test]
    public void ForwardWithoutStatisticsOutputs()
    {
        int rows = 3, cols = 20;
        var x = Rand.Normal(4, rows * cols);
        var (y, mean, rstd) = (Empty(rows, cols), Empty(rows), Empty(rows));
        Device.Backend.LayerNormForward(T(x, rows, cols), null, null, Eps, y, mean, rstd);
        ulong gy = Gpu.Poisoned(rows * cols);
        Gpu.Launch("layer_norm_f32", 2, 32, Ptr(Gpu.Upload(x)), Ptr(0), Ptr(0), Ptr(gy), Ptr(0), Ptr(0), U32(rows), U32(cols), F32(Eps), U32(0), U32(0));
        Check.Close(y.ToArray(), Gpu.Download(gy, rows * cols), 1e-5, 1e-5, "layer_norm_f32 y (no mean/rstd)");
    }

    // rows, cols, weight, wanted outputs (dx, dw, db), block, blocks (= partial rows)
    [TestCase(3, 7, true, true, true, true, 32u, 2u)]
    [TestCase(5, 33, true, true, true, true, 64u, 3u)]
    [TestCase(9, 100, false, true, true, true, 96u, 4u)]
    [TestCase(4, 257, true, true, false, false, 128u, 2u)]
    [TestCase(6, 50, true, false, true, true, 64u, 4u)]
    [TestCase(6, 50, true, false, true, false, 32u, 3u)]
    [TestCase(2, 45, true, true, false, true, 32u, 5u)]   // more blocks than rows: idle blocks write zero partials
    public void BackwardMatchesCpu(int rows, int cols, bool weight, bool wantDx, bool wantDw, bool wantDb, uint block, uint blocks)
    {
        var x = Rand.Normal(5, rows * cols, 2f).Select(v => v - 0.5f).ToArray();
        var w = weight ? Rand.Uniform(6, cols, 0.5f, 1.5f) : null;
        var dy = Rand.Uniform(7, rows * cols);
        var (y, mean, rstd) = (Empty(rows, cols), Empty(rows), Empty(rows));
        var xt = T(x, rows, cols);
        Device.Backend.LayerNormForward(xt, Opt(w, cols), null, Eps, y, mean, rstd);
        var dx = wantDx ? Empty(rows, cols) : null;
        var dw = wantDw ? Empty(cols) : null;
        var db = wantDb ? Empty(cols) : null;
        Device.Backend.LayerNormBackward(T(dy, rows, cols), xt, Opt(w, cols), mean, rstd, dx, dw, db);

        ulong gdx = wantDx ? Gpu.Poisoned(rows * cols) : 0;
        ulong dwPart = wantDw ? Gpu.Poisoned((int)blocks * cols) : 0, dbPart = wantDb ? Gpu.Poisoned((int)blocks * cols) : 0;
        ulong gdw = wantDw ? Gpu.Poisoned(cols) : 0, gdb = wantDb ? Gpu.Poisoned(cols) : 0;
        uint shared = wantDw || wantDb ? (uint)(8 * cols) : 0;
        Gpu.Launch("layer_norm_bwd_f32", blocks, block, shared,
            Ptr(Gpu.Upload(dy)), Ptr(Gpu.Upload(x)), Ptr(Up(w)), Ptr(Gpu.Upload(mean.ToArray())), Ptr(Gpu.Upload(rstd.ToArray())),
            Ptr(gdx), Ptr(dwPart), Ptr(dbPart), U32(rows), U32(cols), U32(0));
        if (wantDw || wantDb)
            Gpu.Launch("layer_norm_bwd_params_f32", SimGpu.Grid(cols, 32, 2), 32,
                Ptr(dwPart), Ptr(dbPart), Ptr(gdw), Ptr(gdb), U32(blocks), U32(cols));

        if (dx is not null) Check.Close(dx.ToArray(), Gpu.Download(gdx, rows * cols), 1e-4, 2e-5, "layer_norm_bwd_f32 dx");
        if (dw is not null) Check.Close(dw.ToArray(), Gpu.Download(gdw, cols), 1e-4, 2e-5, "layer_norm dweight");
        if (db is not null) Check.Close(db.ToArray(), Gpu.Download(gdb, cols), 1e-5, 2e-6, "layer_norm dbias");
    }

    Tensor? Opt(float[]? data, int n) => data is null ? null : T(data, n);
    ulong Up(float[]? data) => data is null ? 0 : Gpu.Upload(data);
}
