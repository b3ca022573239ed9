using Sbp.Backends;
using Sbp.Kernels.Tests.Support;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/optim.ptx against CpuBackend.SgdUpdate / AdamWUpdate: same formulas in the same order, so bit for bit.</summary>
public sealed class OptimKernelTests : KernelTest
{
    // lr, momentum, dampening, nesterov, weight decay, first step, n
    [TestCase(0.1f, 0f, 0f, false, 0f, false, 1000)]
    [TestCase(0.05f, 0f, 0f, false, 1e-2f, false, 33)]
    [TestCase(0.05f, 0.9f, 0f, false, 0f, true, 1000)]
    [TestCase(0.05f, 0.9f, 0.1f, false, 1e-2f, false, 1000)]
    [TestCase(0.01f, 0.9f, 0f, true, 5e-4f, false, 257)]
    [TestCase(0.01f, 0.8f, 0f, true, 0f, true, 7)]
    public void SgdMatchesCpu(float lr, float momentum, float dampening, bool nesterov, float wd, bool first, int n)
    {
        var spec = new SgdUpdateSpec(lr, momentum, dampening, nesterov, wd, first);
        var p = Rand.Uniform(1, n);
        var g = Rand.Uniform(2, n);
        var b = Rand.Uniform(3, n);
        bool withBuffer = momentum != 0f;
        var pt = T(p, n);
        var bt = withBuffer ? T(b, n) : null;
        Device.Backend.SgdUpdate(spec, pt, T(g, n), bt);

        ulong gp = Gpu.Upload(p), gb = withBuffer ? Gpu.Upload(b) : 0;
        Gpu.Launch("sgd_f32", SimGpu.Grid(n, 128, 3), 128, Ptr(gp), Ptr(Gpu.Upload(g)), Ptr(gb), U32(n),
            F32(lr), F32(momentum), F32(dampening), F32(wd), U32(nesterov ? 1 : 0), U32(first ? 1 : 0));
        Check.Exact(pt.ToArray(), Gpu.Download(gp, n), "sgd_f32 param");
        if (bt is not null) Check.Exact(bt.ToArray(), Gpu.Download(gb, n), "sgd_f32 momentum buffer");
    }

    // lr, weight decay, step, n
    [TestCase(1e-3f, 0f, 1L, 1000)]
    [TestCase(1e-3f, 1e-2f, 1L, 33)]
    [TestCase(3e-4f, 0.05f, 10L, 1000)]
    [TestCase(1e-2f, 0.1f, 1000L, 129)]
    public void AdamWMatchesCpu(float lr, float wd, long step, int n)
    {
        var spec = new AdamWUpdateSpec(lr, 0.9f, 0.999f, 1e-8f, wd, step);
        var p = Rand.Uniform(4, n);
        var g = Rand.Uniform(5, n);
        var m = Rand.Uniform(6, n, -0.1f, 0.1f);
        var v = Rand.Uniform(7, n, 0f, 0.01f);
        var (pt, mt, vt) = (T(p, n), T(m, n), T(v, n));
        Device.Backend.AdamWUpdate(spec, pt, T(g, n), mt, vt);

        ulong gp = Gpu.Upload(p), gm = Gpu.Upload(m), gv = Gpu.Upload(v);
        Gpu.Launch("adamw_f32", SimGpu.Grid(n, 128, 3), 128, Ptr(gp), Ptr(Gpu.Upload(g)), Ptr(gm), Ptr(gv), U32(n),
            F32(spec.DecayFactor), F32(spec.Beta1), F32(spec.Beta2), F32(spec.StepSize), F32(spec.BiasCorrection2Sqrt), F32(spec.Eps));
        Check.Exact(pt.ToArray(), Gpu.Download(gp, n), "adamw_f32 param");
        Check.Exact(mt.ToArray(), Gpu.Download(gm, n), "adamw_f32 exp_avg");
        Check.Exact(vt.ToArray(), Gpu.Download(gv, n), "adamw_f32 exp_avg_sq");
    }
}
