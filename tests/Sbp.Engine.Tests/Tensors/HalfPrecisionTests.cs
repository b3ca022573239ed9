using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Tensors;

/// <summary>
/// BFloat16 and Float16: conversions against a bit-level reference written here independently (nearest of the two
/// neighbouring 16-bit values, ties to the even one), for the scalar and the vectorised paths; 16-bit tensors
/// take half the bytes, cast through autograd, and are refused by compute ops with the cast to use.
/// </summary>
public class HalfPrecisionTests
{
    /// <summary>Specials, ties, overflow edges, subnormals of both types and seeded values over 2^-40..2^20.</summary>
    static float[] Inputs()
    {
        var v = new List<float> { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN, BitConverter.UInt32BitsToSingle(0x7F800001),
            65504f, 65519.99f, 65520f, 65536f, -70000f, 3.3895314e38f, 3.3961776e38f, float.MaxValue, float.Epsilon, 1e-40f,
            1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 2048, 1f + 3f / 2048, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 6.097555e-5f, 6.1035156e-5f };
        var rng = new Random(3);
        for (int i = 0; i < 200_000; i++)
            v.Add((float)(Math.Pow(2, -40 + 60 * rng.NextDouble()) * (rng.Next(2) == 0 ? -1 : 1)));
        for (int i = 0; i < 20_000; i++) v.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));   // any bits
        return [.. v];
    }

    /// <summary>bfloat16 by its definition: the upper 16 bits truncated, or the next value up in magnitude, whichever is nearer (ties: even).</summary>
    static ushort ReferenceBf16(float x)
    {
        if (float.IsNaN(x)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint low = bits & 0xFFFF0000u, high = low + 0x10000u;
        if (float.IsInfinity(x)) return (ushort)(bits >> 16);
        double dl = Math.Abs((double)x - BitConverter.UInt32BitsToSingle(low));
        double dh = (high & 0x7F800000u) == 0x7F800000u && (high & 0x007FFFFFu) != 0 ? double.PositiveInfinity
            : Math.Abs(Value(high) - x);
        bool up = dh < dl || (dh == dl && ((low >> 16) & 1) == 1);
        return (ushort)((up ? high : low) >> 16);

        static double Value(uint b) => (b & 0x7FFFFFFFu) == 0x7F800000u ? Math.CopySign(Math.Pow(2, 128), b >> 31 == 1 ? -1 : 1) : BitConverter.UInt32BitsToSingle(b);
    }

    /// <summary>Every finite float16 value, decoded from sign, exponent and mantissa by formula, in ascending order of magnitude.</summary>
    static readonly (double Value, ushort Bits)[] Half16 = Enumerable.Range(0, 0x7C00)
        .Select(b => (b < 0x400 ? b * Math.Pow(2, -24) : (1 + (b & 0x3FF) / 1024.0) * Math.Pow(2, (b >> 10) - 15), (ushort)b)).ToArray();

    static readonly double[] Half16Values = Half16.Select(h => h.Value).ToArray();

    /// <summary>float16 by its definition: the nearest finite value, ties to the even mantissa; at or past 65520 infinity.</summary>
    static ushort ReferenceF16(float x)
    {
        ushort sign = (ushort)(BitConverter.SingleToUInt32Bits(x) >> 31 << 15);
        double a = Math.Abs((double)x);
        if (a >= 65520) return (ushort)(sign | 0x7C00);
        int i = Array.BinarySearch(Half16Values, a);
        if (i >= 0) return (ushort)(sign | Half16[i].Bits);
        int above = ~i, below = above - 1;
        if (above == Half16.Length) return (ushort)(sign | Half16[below].Bits);   // (65504, 65520): the largest finite
        double db = a - Half16[below].Value, da = Half16[above].Value - a;
        var pick = da < db || (da == db && (Half16[above].Bits & 1) == 0) ? Half16[above] : Half16[below];
        return (ushort)(sign | pick.Bits);
    }

    [Test]
    public void BFloat16RoundsToNearestEvenKeepsSubnormalsAndMakesEveryNaNTheCanonicalOne()
    {
        var x = Inputs();
        var vector = new ushort[x.Length];
        HalfPrecision.Narrow(x, vector, DType.BFloat16);
        for (int i = 0; i < x.Length; i++)
        {
            ushort expected = ReferenceBf16(x[i]);
            if (HalfPrecision.ToBFloat16(x[i]) != expected || vector[i] != expected)
                Assert.Fail($"x = {x[i]:R} (0x{BitConverter.SingleToUInt32Bits(x[i]):X8}): reference 0x{expected:X4}, scalar 0x{HalfPrecision.ToBFloat16(x[i]):X4}, vector 0x{vector[i]:X4}");
        }
        var back = new float[x.Length];
        HalfPrecision.Widen(vector, back, DType.BFloat16);
        Assert.That(back.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(vector.Select(b => (uint)b << 16)), "widening is the bits shifted up");
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void RoundingInFloat32IsNarrowingThenWidening(DType dtype)
    {
        // the GEMM rounds autocast's Float32 weights this way while packing: it must be the cast's bits, NaN included
        var x = Inputs();
        var half = new ushort[x.Length];
        var want = new float[x.Length];
        HalfPrecision.Narrow(x, half, dtype);
        HalfPrecision.Widen(half, want, dtype);
        var got = new float[x.Length];
        HalfPrecision.Round(x, got, dtype);
        var inPlace = (float[])x.Clone();
        HalfPrecision.Round(inPlace, inPlace, dtype);
        var wantBits = want.Select(BitConverter.SingleToUInt32Bits).ToArray();
        Assert.That(got.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(wantBits));
        Assert.That(inPlace.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(wantBits), "in place");
    }

    [Test]
    public void Float16RoundsToNearestEvenWithSubnormalsOverflowToInfinityAndNaNKept()
    {
        var x = Inputs();
        var vector = new ushort[x.Length];
        HalfPrecision.Narrow(x, vector, DType.Float16);
        for (int i = 0; i < x.Length; i++)
        {
            if (float.IsNaN(x[i]))
            {
                Assert.That((vector[i] & 0x7C00) == 0x7C00 && (vector[i] & 0x3FF) != 0, $"NaN stays NaN, got 0x{vector[i]:X4}");
                continue;
            }
            ushort expected = ReferenceF16(x[i]);
            if (HalfPrecision.ToFloat16(x[i]) != expected || vector[i] != expected)
                Assert.Fail($"x = {x[i]:R}: reference 0x{expected:X4}, scalar 0x{HalfPrecision.ToFloat16(x[i]):X4}, vector 0x{vector[i]:X4}");
        }
        var back = new float[x.Length];
        HalfPrecision.Widen(vector, back, DType.Float16);
        for (int i = 0; i < x.Length; i++)
            if (!float.IsNaN(back[i]))
                Assert.That(back[i], Is.EqualTo((float)ReferenceValue(vector[i])), $"0x{vector[i]:X4} widened");

        static double ReferenceValue(ushort b)
        {
            int e = (b >> 10) & 0x1F, m = b & 0x3FF;
            double v = e == 0x1F ? double.PositiveInfinity : e == 0 ? m * Math.Pow(2, -24) : (1 + m / 1024.0) * Math.Pow(2, e - 15);
            return b >> 15 == 1 ? -v : v;
        }
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void SixteenBitTensorsTakeHalfTheBytesAndRoundTripThroughCasts(DType dtype)
    {
        var device = Device.CreateCpu($"half-{dtype}");
        long before = device.Pool.InUseBytes;
        var values = Enumerable.Range(0, 1001).Select(i => (float)Math.Sin(i) * 100f).ToArray();
        using var x = Tensor.FromArray(values, new Shape(7, 11, 13), dtype, device);
        Assert.Multiple(() =>
        {
            Assert.That((x.DType, x.Bytes, device.Pool.InUseBytes - before), Is.EqualTo((dtype, 2002L, 2002L)));
            var expected = values.Select(v => dtype == DType.BFloat16 ? HalfPrecision.FromBFloat16(HalfPrecision.ToBFloat16(v)) : HalfPrecision.FromFloat16(HalfPrecision.ToFloat16(v)));
            Assert.That(x.ToArray(), Is.EqualTo(expected));
            using var wide = x.To(DType.Float32);
            Assert.That(wide.ToArray(), Is.EqualTo(x.ToArray()), "widening is exact");
            using var other = x.To(dtype == DType.BFloat16 ? DType.Float16 : DType.BFloat16);
            Assert.That(other.ToArray(), Is.EqualTo(Tensor.FromArray(x.ToArray(), x.Shape, other.DType, device).ToArray()), "16 to 16 bits goes through float");
            Assert.That(ReferenceEquals(x.To(dtype), x), "a cast to the same type is the tensor itself");
        });
    }

    [Test]
    public void ComputeOpsRefuseSixteenBitTensorsAndNameTheCast()
    {
        var device = Device.CreateCpu("half-refused");
        using var x = Tensor.FromArray([1f, 2f, 3f], new Shape(3), DType.BFloat16, device);
        using var f = Tensor.FromArray([1f, 2f, 3f], new Shape(3), device);
        Assert.Multiple(() =>
        {
            Assert.That(() => Ops.Add(x, f), Throws.ArgumentException.With.Message.Contains("add: got a BFloat16 tensor [3]").And.Message.Contains("Ops.To(x, DType.Float32)"));
            Assert.That(() => Ops.Exp(x), Throws.ArgumentException.With.Message.Contains("exp: got a BFloat16 tensor [3]"));
            Assert.That(() => Ops.Permute(x, 0), Throws.ArgumentException.With.Message.Contains("BFloat16"));
            Assert.That(() => Ops.To(Tensor.Indices(1, 2), DType.BFloat16), Throws.ArgumentException.With.Message.Contains("to: casts convert between Float32, BFloat16 and Float16"));
        });
    }

    [Test]
    public void EveryKindOfOpRefusesASixteenBitInputBeforeReadingIt()
    {
        var device = Device.CreateCpu("half-every-op");
        using var h = Tensor.FromArray(new float[2 * 4 * 6], new Shape(2, 4, 6), DType.Float16, device);
        using var f = Tensor.Zeros(new Shape(2, 4, 6), device);
        using var w = Tensor.Zeros(new Shape(3, 6), device);
        var ops = new (string Name, Func<Tensor> Run)[]
        {
            ("slice (last axis)", () => Ops.Slice(h, 2, 0, 2)), ("concat", () => Ops.Concat([h, h], 0)), ("pad", () => Ops.Pad(h, [1, 1])),
            ("roll", () => Ops.Roll(h, [1], [2])), ("transpose (last axis)", () => Ops.Transpose(h, 1, 2)), ("index_select", () => Ops.IndexSelect(h, 1, Tensor.Indices(0, 2))),
            ("sum", () => Ops.Sum(h)), ("softmax", () => Ops.Softmax(h)), ("layer_norm", () => Ops.LayerNorm(h, [6])),
            ("linear (Float32 bias)", () => Ops.Linear(h, w, Tensor.Zeros(new Shape(3), device))), ("matmul", () => Ops.Matmul(f, Ops.Transpose(h, 1, 2))), ("mul", () => Ops.Mul(f, h)),
            ("dropout", () => Ops.Dropout(h, 0.5f, new Sbp.Rng.RandomSource(1))), ("grad_mask", () => Ops.GradMask(h, 1, KeepMask.Strided(4, 2, 0))),
        };
        foreach (var (name, run) in ops)
            Assert.That(() => run(), Throws.ArgumentException.With.Message.Contains("Float16"), name);
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void CopiesThatKeepTheLastAxisWholeMoveSixteenBitTensorsAsTheyAre(DType dt)
    {
        var device = Device.CreateCpu("half-copies");
        var values = Enumerable.Range(0, 2 * 3 * 4 * 6).Select(i => 0.37f * i - 20f).ToArray();
        using var x32 = Tensor.FromArray(values, new Shape(2, 3, 4, 6), device);
        using var x = x32.To(dt);
        using var permuted = Ops.Permute(x, 2, 0, 1, 3);
        using var sliced = Ops.Slice(x, 1, 1, 2);
        Assert.Multiple(() =>
        {
            Assert.That(permuted.DType, Is.EqualTo(dt));
            Assert.That(permuted.ToArray(), Is.EqualTo(Ops.Permute(x.To(DType.Float32), 2, 0, 1, 3).ToArray()), "the same elements, moved");
            Assert.That(sliced.DType, Is.EqualTo(dt));
            Assert.That(sliced.ToArray(), Is.EqualTo(Ops.Slice(x.To(DType.Float32), 1, 1, 2).ToArray()));
        });
    }

    [Test]
    public void GradientsFlowThroughCastsInFloat32()
    {
        var device = Device.CreateCpu("half-grad");
        var x = Tensor.FromArray([0.1f, 1.0009765f, -3f], new Shape(3), device);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = Ops.To(Ops.To(x, DType.BFloat16), DType.Float32);
            tape.Backward(Ops.Sum(Ops.Mul(y, Tensor.FromArray([1f, 1.0009765f, 2f], new Shape(3), device))));
        }
        Assert.That(x.Grad!.DType, Is.EqualTo(DType.Float32));
        Assert.That(x.Grad.ToArray(), Is.EqualTo(new[] { 1f, 1.0009765f, 2f }), "the cotangent is not rounded on its way back (1.0009765 stays, bfloat16 would give 1)");
    }

    [Test]
    public void ACastInsideAnSbpRegionIsPositionWise()
    {
        var device = Device.CreateCpu("half-region");
        var x = Tensor.FromArray(Enumerable.Range(0, 64).Select(i => 0.1f * i + 0.013f).ToArray(), new Shape(2, 8, 4), device);
        x.RequiresGrad = true;
        float[] Grad(RegionMode mode)
        {
            using (var tape = Tape.Begin())
            {
                var y = SbpRegion.Run("cast", x, 1, KeepMask.Strided(8, 2, 0), h => Ops.Mul(Ops.To(Ops.To(Ops.Mul(h, 2f), DType.BFloat16), DType.Float32), h), new RegionOptions(mode));
                tape.Backward(Ops.Sum(y));
            }
            var g = x.Grad!.ToArray();
            x.ZeroGrad();
            return g;
        }
        var sbp = Grad(RegionMode.SparseCache);
        Assert.That(sbp, Is.EqualTo(Grad(RegionMode.Oracle)), "SBP and GradMask agree through the casts");
        Assert.That(sbp.Where((_, i) => i / 4 % 2 == 1), Is.All.EqualTo(0f), "dropped positions get no gradient");
    }

}
