using System.Runtime.InteropServices;
using Sbp.Backends;
using Sbp.Kernels.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests;

/// <summary>
/// kernels/half.ptx: each 16-bit kernel gives the bits of its Float32 twin (elementwise.ptx, on the simulator) run on the
/// exact widening, with the result rounded as HalfPrecision rounds; and the CPU backend's 16-bit path within GELU's tolerance.
/// </summary>
public sealed class HalfKernelTests : KernelTest
{
    static readonly float[] Specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e-30f, -1e-30f, 65504f, -3e38f];

    [TestCase(DType.BFloat16, UnaryOp.Relu, "relu", 1000, true)]
    [TestCase(DType.Float16, UnaryOp.Relu, "relu", 37, false)]
    [TestCase(DType.BFloat16, UnaryOp.Gelu, "gelu_erf", 1000, true)]
    [TestCase(DType.Float16, UnaryOp.Gelu, "gelu_erf", 513, false)]
    [TestCase(DType.BFloat16, UnaryOp.GeluTanh, "gelu_tanh", 129, false)]
    [TestCase(DType.Float16, UnaryOp.GeluTanh, "gelu_tanh", 1000, true)]
    public void BiasActivationIsTheFloat32KernelOnTheWidening(DType type, UnaryOp op, string twin, int n, bool withBias)
    {
        const int cols = 20;
        var x16 = Narrow(Inputs(n), type);
        var bias = withBias ? Rand.Uniform(11, cols, -1f, 1f) : null;
        var pre = Widen(x16, type);
        if (bias is not null) for (int i = 0; i < n; i++) pre[i] += bias[i % cols];
        var dy = Rand.Uniform(12, n, -2f, 2f);

        // the Float32 twins on the widening (+ bias), then rounded on the host
        ulong pPre = Gpu.Upload(pre), y32 = Gpu.Poisoned(n), dx32 = Gpu.Poisoned(n), pdy = Gpu.Upload(dy);
        Gpu.Launch(twin + "_f32", SimGpu.Grid(n, 128, 3), 128, Ptr(pPre), Ptr(y32), U32(n));
        Gpu.Launch(twin + "_bwd_f32", SimGpu.Grid(n, 128, 3), 128, Ptr(pPre), Ptr(pdy), Ptr(dx32), U32(n));
        var expectedY = Narrow(Gpu.Download(y32, n), type);

        ulong px = Gpu.Upload(Packed(x16)), pb = bias is null ? 0 : Gpu.Upload(bias), y = Gpu.Poisoned((n + 1) / 2), dx = Gpu.Poisoned(n);
        uint typeCode = type == DType.Float16 ? 1u : 0u, opCode = op switch { UnaryOp.Relu => 0u, UnaryOp.Gelu => 1u, _ => 2u };
        Gpu.Launch("bias_act_b16", SimGpu.Grid(n, 64, 4), 64, Ptr(px), Ptr(pb), Ptr(y), U32(n), U32(cols), U32(typeCode), U32(opCode));
        Gpu.Launch("bias_act_bwd_b16", SimGpu.Grid(n, 64, 4), 64, Ptr(px), Ptr(pb), Ptr(pdy), Ptr(dx), U32(n), U32(cols), U32(typeCode), U32(opCode));

        var actualY = Unpacked(Gpu.Download(y, (n + 1) / 2), n);
        for (int i = 0; i < n; i++)
            if (actualY[i] != expectedY[i] && !(IsNaN(actualY[i], type) && IsNaN(expectedY[i], type)))
                Assert.Fail($"bias_act_b16 {type} {op}: y[{i}] = 0x{actualY[i]:X4}, the twin rounded gives 0x{expectedY[i]:X4} (x + bias {pre[i]}).");
        Check.Exact(Gpu.Download(dx32, n), Gpu.Download(dx, n), $"bias_act_bwd_b16 {type} {op}");

        // the CPU backend's 16-bit path (widened in its row loops) agrees within GELU's tolerance, rounded
        using var xt = Tensor.FromArray(Widen(x16, type), new Shape(n / cols * cols == n ? [n / cols, cols] : [1, n]), Device).To(type);
        if (n % cols == 0 || bias is null)
        {
            using var yc = Tensor.Empty(xt.Shape, Device, type);
            using var bt = bias is null ? null : T(bias, cols);
            if (bt is null) Device.Backend.Unary(op, xt, yc);
            else Device.Backend.BiasActivation(op, xt, bt, yc);
            using var ycw = yc.To(DType.Float32);
            var expected = Widen(expectedY, type);
            bool Finite(int i) => float.IsFinite(expected[i]);   // the specials are checked bit for bit above
            Check.Close(expected.Where((_, i) => Finite(i)).ToArray(), ycw.ToArray().Where((_, i) => Finite(i)).ToArray(), 1e-2, 1e-3, $"CPU {type} {op}");
        }
    }

    [TestCase(3, 9, 7, DType.BFloat16)]
    [TestCase(2, 513, 1, DType.Float16)]
    [TestCase(1, 6, 129, DType.BFloat16)]
    public void Gather16MatchesTheCpuBitForBit(int outer, int n, int inner, DType type)
    {
        var x16 = Narrow(Rand.Uniform(14, outer * n * inner, -3f, 3f), type);
        var idx = Enumerable.Range(0, n).Where(i => i % 3 != 1).Reverse().ToArray();   // kept positions, not in order
        using var source = Tensor.FromArray(Widen(x16, type), new Shape(outer, n, inner), Device).To(type);
        using var expected = Tensor.Empty(new Shape(outer, idx.Length, inner), Device, type);
        Device.Backend.IndexSelect(source, 1, I(idx, idx.Length), expected);
        using var wide = expected.To(DType.Float32);
        var expectedBits = Narrow(wide.ToArray(), type);

        int total = outer * idx.Length * inner;
        ulong y = Gpu.Poisoned((total + 1) / 2);
        Gpu.Launch("gather_b16", SimGpu.Grid(total, 64, 3), 64, Ptr(Gpu.Upload(Packed(x16))), Ptr(Gpu.Upload(idx)), Ptr(y),
            U32(outer), U32(n), U32(idx.Length), U32(inner));
        var actual = Unpacked(Gpu.Download(y, (total + 1) / 2), total);
        Assert.That(actual, Is.EqualTo(expectedBits), "gather_b16 against the CPU's 16-bit IndexSelect");
        // and the CPU's against the definition
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < idx.Length; i++)
                for (int j = 0; j < inner; j++)
                    Assert.That(expectedBits[(o * idx.Length + i) * inner + j], Is.EqualTo(x16[(o * n + idx[i]) * inner + j]));
    }

    [TestCase(DType.BFloat16, 7, 40)]
    [TestCase(DType.Float16, 3, 97)]
    public void LayerNormOfA16BitInputIsTheFloat32KernelOnTheWidening(DType type, int rows, int cols)
    {
        var x16 = Narrow(Rand.Uniform(15, rows * cols, -2f, 3f), type);
        var w = Rand.Uniform(16, cols, 0.5f, 1.5f);
        var dy = Rand.Uniform(17, rows * cols);
        (float[] Y, float[] Stats, float[] Dx) Run(ulong x, uint xType)
        {
            ulong y = Gpu.Poisoned(rows * cols), mean = Gpu.Poisoned(rows), rstd = Gpu.Poisoned(rows), dx = Gpu.Poisoned(rows * cols), pw = Gpu.Upload(w);
            Gpu.Launch("layer_norm_f32", 2, 32, Ptr(x), Ptr(pw), Ptr(0), Ptr(y), Ptr(mean), Ptr(rstd), U32(rows), U32(cols), F32(1e-5f), U32(xType), U32(0));
            Gpu.Launch("layer_norm_bwd_f32", 2, 32, 0, Ptr(Gpu.Upload(dy)), Ptr(x), Ptr(pw), Ptr(mean), Ptr(rstd), Ptr(dx), Ptr(0), Ptr(0),
                U32(rows), U32(cols), U32(xType));
            return (Gpu.Download(y, rows * cols), [.. Gpu.Download(mean, rows), .. Gpu.Download(rstd, rows)], Gpu.Download(dx, rows * cols));
        }
        var wide = Run(Gpu.Upload(Widen(x16, type)), 0);
        var half = Run(Gpu.Upload(Packed(x16)), type == DType.Float16 ? 2u : 1u);
        Check.Exact(wide.Y, half.Y, "y");
        Check.Exact(wide.Stats, half.Stats, "mean and rstd");
        Check.Exact(wide.Dx, half.Dx, "dx");
        // y written in the 16-bit type (y_type): the Float32 y rounded
        ulong y16 = Gpu.Poisoned((rows * cols + 1) / 2), m = Gpu.Poisoned(rows), r = Gpu.Poisoned(rows);
        uint code = type == DType.Float16 ? 2u : 1u;
        Gpu.Launch("layer_norm_f32", 2, 32, Ptr(Gpu.Upload(Packed(x16))), Ptr(Gpu.Upload(w)), Ptr(0), Ptr(y16), Ptr(m), Ptr(r),
            U32(rows), U32(cols), F32(1e-5f), U32(code), U32(code));
        Assert.That(Unpacked(Gpu.Download(y16, (rows * cols + 1) / 2), rows * cols), Is.EqualTo(Narrow(half.Y, type)), "a 16-bit y");
    }

    [TestCase(DType.BFloat16, 6, 11)]
    [TestCase(DType.Float16, 3, 70)]
    public void CrossEntropyOf16BitLogitsIsTheFloat32KernelOnTheWidening(DType type, int rows, int classes)
    {
        var z16 = Narrow(Rand.Uniform(18, rows * classes, -4f, 4f), type);
        var y = Enumerable.Range(0, rows).Select(r => (r * 7) % classes).ToArray();
        var w = Rand.Uniform(19, classes, 0.5f, 1.5f);
        var g = Rand.Uniform(20, rows, 0.5f, 1f);
        (float[] Loss, float[] Lse, float[] Dz) Run(ulong z, uint zType)
        {
            ulong loss = Gpu.Poisoned(rows), lse = Gpu.Poisoned(rows), dz = Gpu.Poisoned(rows * classes), pw = Gpu.Upload(w), py = Gpu.Upload(y);
            Gpu.Launch("cross_entropy_f32", 2, 32, Ptr(z), Ptr(py), Ptr(pw), Ptr(loss), Ptr(lse), U32(rows), U32(classes), F32(0.1f), U32(zType));
            Gpu.Launch("cross_entropy_bwd_f32", 2, 32, Ptr(z), Ptr(py), Ptr(pw), Ptr(lse), Ptr(Gpu.Upload(g)), Ptr(dz),
                U32(rows), U32(classes), F32(0.1f), U32(1), U32(zType));
            return (Gpu.Download(loss, rows), Gpu.Download(lse, rows), Gpu.Download(dz, rows * classes));
        }
        var wide = Run(Gpu.Upload(Widen(z16, type)), 0);
        var half = Run(Gpu.Upload(Packed(z16)), type == DType.Float16 ? 2u : 1u);
        Check.Exact(wide.Loss, half.Loss, "loss");
        Check.Exact(wide.Lse, half.Lse, "lse");
        Check.Exact(wide.Dz, half.Dz, "dz");
    }

    static bool IsNaN(ushort bits, DType type) => float.IsNaN(Widen([bits], type)[0]);

    /// <summary>Normal values, a sweep over [-9, 9] and the specials.</summary>
    static float[] Inputs(int n)
    {
        var x = Rand.Normal(13, n, 2f);
        for (int i = 0; i < Math.Min(n, 30); i++) x[i] = -9f + 18f * i / 29f;
        for (int i = 0; i < Specials.Length && 30 + i < n; i++) x[30 + i] = Specials[i];
        return x;
    }

    static ushort[] Narrow(float[] x, DType type)
    {
        var r = new ushort[x.Length];
        HalfPrecision.Narrow(x, r, type);
        return r;
    }

    static float[] Widen(ushort[] x, DType type)
    {
        var r = new float[x.Length];
        HalfPrecision.Widen(x, r, type);
        return r;
    }

    /// <summary>16-bit values two to a float (the simulator uploads floats), the last one padded.</summary>
    static float[] Packed(ushort[] x)
    {
        var padded = new ushort[(x.Length + 1) / 2 * 2];
        x.CopyTo(padded, 0);
        return MemoryMarshal.Cast<ushort, float>(padded).ToArray();
    }

    static ushort[] Unpacked(float[] pairs, int n) => MemoryMarshal.Cast<float, ushort>(pairs)[..n].ToArray();
}
