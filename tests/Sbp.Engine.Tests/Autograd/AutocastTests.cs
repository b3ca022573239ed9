using Sbp.Autograd;
using Sbp.Engine.Tests.Stochastic;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Autograd;

/// <summary>
/// Autocast: lower-precision ops bit for bit as "round the inputs, compute in Float32, round the output" and within a
/// stated tolerance of Float32; the Float32 policy for every other op; the parameter cast cache; gradients against
/// Float32 finite differences; what the tape saves; the SBP oracle and re-run regions under autocast.
/// </summary>
public class AutocastTests : DeviceTest
{
    /// <summary>Relative tolerance against the Float32 result, scaled by the output's largest magnitude: two input roundings and one output rounding.</summary>
    static double Tolerance(DType dt) => dt == DType.BFloat16 ? 2e-2 : 3e-3;

    public sealed record LowCase(string Name, int[][] Shapes, Func<Tensor[], Tensor> Op)
    {
        public override string ToString() => Name;
    }

    static readonly LowCase[] LowCases =
    [
        new("matmul 2-D", [[3, 5], [5, 4]], t => Ops.Matmul(t[0], t[1])),
        new("matmul batched", [[2, 3, 5], [2, 5, 4]], t => Ops.Matmul(t[0], t[1])),
        new("linear with bias", [[2, 3, 6], [4, 6], [4]], t => Ops.Linear(t[0], t[1], t[2])),
        new("linear rows", [[3, 6], [8, 6], [8]], t => Ops.LinearRows(t[0], t[1], t[2], 2, 3)),
        new("conv3d", [[1, 2, 3, 5, 5], [4, 2, 2, 3, 3], [4]], t => Ops.Conv3d(t[0], t[1], t[2], padding: [1])),
        new("conv2d grouped", [[2, 4, 5, 5], [4, 2, 3, 3]], t => Ops.Conv2d(t[0], t[1], null, stride: [2], padding: [1], groups: 2)),
        new("attention with bias", [[1, 2, 4, 8], [1, 2, 6, 8], [1, 2, 6, 3], [2, 4, 6]], t => Ops.ScaledDotProductAttention(t[0], t[1], t[2], t[3])),
    ];

    static IEnumerable<TestCaseData> LowCasesByType() =>
        from c in LowCases from dt in new[] { DType.BFloat16, DType.Float16 } select new TestCaseData(c, dt).SetArgDisplayNames(c.Name, dt.ToString());

    Tensor[] Inputs(LowCase c, int seed) => [.. c.Shapes.Select((s, i) => T(Rand.Uniform(seed + i, Ref.Numel(s), -1.5f, 1.5f), s))];

    [TestCaseSource(nameof(LowCasesByType))]
    public void LowerPrecisionOpsRoundInputsAccumulateInFloat32AndRoundTheOutput(LowCase c, DType dt)
    {
        var x = Inputs(c, 11);
        Tensor y;
        using (Autocast.Begin(dt)) y = c.Op(x);
        var float32 = c.Op(x).ToArray();
        // the reference: the Float32 op on the rounded inputs, its output rounded
        var rounded = x.Select(t => t.To(dt).To(DType.Float32)).ToArray();
        var expected = c.Op(rounded).To(dt).ToArray();
        double scale = float32.Max(Math.Abs);
        Assert.Multiple(() =>
        {
            Assert.That(y.DType, Is.EqualTo(dt), "a lower-precision op gives the autocast type");
            Assert.That(y.ToArray(), Is.EqualTo(expected), "bit for bit: rounded inputs, Float32 accumulation, rounded output");
            Assert.That(y.ToArray(), Is.EqualTo(float32).Within(Tolerance(dt) * scale), $"within {Tolerance(dt)} x {scale:G3} of Float32");
            Assert.That(y.ToArray(), Is.Not.EqualTo(float32), "the inputs were rounded");
        });
    }

    [Test]
    public void AnAttentionMaskIsNotRoundedUnderFloat16Autocast()
    {
        // -1e9 is -inf in float16: a row masked with it everywhere would be refused as attending to nothing
        var q = T(Rand.Uniform(51, 2 * 4 * 8), 1, 2, 4, 8);
        var mask = T(Enumerable.Range(0, 16).Select(i => i / 4 == 1 ? -1e9f : i % 4 == 0 ? 0f : -1e9f).ToArray(), 1, 1, 4, 4);
        Tensor y;
        using (Autocast.Begin(DType.Float16)) y = Ops.ScaledDotProductAttention(q, q, q, mask: mask);
        var q16 = q.To(DType.Float16).To(DType.Float32);
        Assert.That(y.ToArray(), Is.EqualTo(Ops.ScaledDotProductAttention(q16, q16, q16, mask: mask).To(DType.Float16).ToArray()));
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void OtherOpsComputeOnTheExactFloat32WideningAndPromoteMixedInputs(DType dt)
    {
        var a = T(Rand.Uniform(1, 24, -2f, 2f), 4, 6);
        var b16 = T(Rand.Uniform(2, 24, -2f, 2f), 4, 6).To(dt);
        var b32 = b16.To(DType.Float32);
        Func<Tensor, Tensor>[] unary =
        [
            t => Ops.Softmax(t), t => Ops.LogSoftmax(t), t => Ops.Relu(t).To(DType.Float32), t => Ops.Exp(t), t => Ops.Sum(t),
            t => Ops.Mean(t, [1]), t => Ops.LayerNorm(t, [6]), t => Ops.Permute(t, 1, 0), t => Ops.Slice(t, 1, 1, 3), t => Ops.Mul(t, 3f),
            t => Ops.Permute(Ops.Reshape(t, 2, 2, 6), 1, 0, 2).To(DType.Float32), t => Ops.Slice(t, 0, 1, 2).To(DType.Float32),
        ];
        foreach (var f in unary)
        {
            Tensor y;
            using (Autocast.Begin(dt)) y = f(b16);
            Assert.That(y.DType, Is.EqualTo(DType.Float32));
            Assert.That(y.ToArray(), Is.EqualTo(f(b32).ToArray()));
        }
        // copies that keep the last axis whole move the 16-bit elements as they are (in pairs); ReLU is exact in 16 bits; GELU
        // runs in its input's type (as PyTorch's): the Float32 GELU of the widening, rounded once
        using (Autocast.Begin(dt))
        {
            Assert.That(Ops.Relu(b16).DType, Is.EqualTo(dt));
            Assert.That(Ops.Gelu(b16).ToArray(), Is.EqualTo(Ops.Gelu(b32).To(dt).ToArray()));
            Assert.That(Ops.Gelu(b16, tanhApproximation: true).ToArray(), Is.EqualTo(Ops.Gelu(b32, tanhApproximation: true).To(dt).ToArray()));
            Assert.That(Ops.Permute(Ops.Reshape(b16, 2, 2, 6), 1, 0, 2).DType, Is.EqualTo(dt));
            Assert.That(Ops.Slice(b16, 0, 1, 2).DType, Is.EqualTo(dt));
            // a layer norm that feeds a GEMM writes its output in the autocast type: the Float32 layer norm, rounded once
            var ln = Ops.LayerNorm(a, [6], null, null, 1e-5f, dt);
            Assert.That(ln.DType, Is.EqualTo(dt));
            Assert.That(ln.ToArray(), Is.EqualTo(Ops.LayerNorm(a, [6]).To(dt).ToArray()));
            // Swin's window helpers move 16-bit data as it is (pairs), exactly: the Float32 op on the widening, rounded back
            var v16 = Ops.Reshape(b16, 1, 2, 2, 1, 6);
            var v32 = Ops.Reshape(b32, 1, 2, 2, 1, 6);
            foreach (var move in new Func<Tensor, Tensor>[]
            {
                t => Ops.Roll(t, [1, -1], [1, 2]), t => Ops.Pad(t, [0, 0, 1, 2, 0, 1], 0.3f),
                t => Ops.WindowReverse3d(Ops.WindowPartition3d(t, (1, 2, 1)), (1, 2, 1), 1, 2, 2, 1),
            })
            {
                var moved = move(v16);
                Assert.That(moved.DType, Is.EqualTo(dt));
                Assert.That(moved.ToArray(), Is.EqualTo(move(v32).To(dt).ToArray()));
            }
        }
        Tensor sum;
        using (Autocast.Begin(dt)) sum = Ops.Add(a, b16);
        Assert.That(sum.DType, Is.EqualTo(DType.Float32), "Float32 and 16-bit inputs promote to Float32");
        Assert.That(sum.ToArray(), Is.EqualTo(Ops.Add(a, b32).ToArray()));
        var logits = b16;
        using var labels = Idx(0, 5, 2, 3);
        Tensor loss;
        using (Autocast.Begin(dt)) loss = Ops.CrossEntropy(logits, labels);
        Assert.That(loss.Item(), Is.EqualTo(Ops.CrossEntropy(b32, labels).Item()));
        Assert.That(() => Ops.Softmax(b16), Throws.ArgumentException.With.Message.Contains("Autocast.Begin"), "outside autocast 16-bit inputs are refused by name");
    }

    [TestCase(DType.BFloat16, false)]
    [TestCase(DType.BFloat16, true)]
    [TestCase(DType.Float16, false)]
    public void BiasGeluKeepsA16BitInputIn16BitsComputedInFloat32(DType dt, bool tanh)
    {
        // the MLP's fc1 output (16-bit) through bias + GELU: the 16-bit type out, no cast either side, the Float32 op's bits rounded
        var source = T(Rand.Uniform(61, 5 * 3 * 24, -3f, 3f), 5, 3, 24);
        var bias = T(Rand.Uniform(62, 24, -1f, 1f), 24);
        var upstream = T(Rand.Uniform(63, 5 * 3 * 24), 5, 3, 24);
        source.RequiresGrad = bias.RequiresGrad = true;
        Tensor y;
        float[] dx, db;
        using (var tape = Tape.Begin())
        {
            using (Autocast.Begin(dt))
            {
                y = Ops.BiasGelu(source.To(dt), bias, tanh);
                Assert.That(tape.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "to", tanh ? "bias_gelu_tanh" : "bias_gelu" }), "one cast: the test's");
                tape.Backward(Ops.Sum(Ops.Mul(y, upstream)));
            }
            (dx, db) = (source.Grad!.ToArray(), bias.Grad!.ToArray());
        }
        bias.ZeroGrad();
        // the reference: the Float32 op on the exact widening of the rounded input
        var wide = source.To(dt).To(DType.Float32).Detach();
        wide.RequiresGrad = true;
        Tensor want;
        using (var tape = Tape.Begin())
        {
            want = Ops.BiasGelu(wide, bias, tanh);
            tape.Backward(Ops.Sum(Ops.Mul(want, upstream)));
        }
        Assert.Multiple(() =>
        {
            Assert.That(y.DType, Is.EqualTo(dt));
            Assert.That(y.ToArray(), Is.EqualTo(want.To(dt).ToArray()), "the Float32 result rounded once");
            Assert.That(dx, Is.EqualTo(wide.Grad!.ToArray()), "dx: Float32, from the 16-bit input read as it is");
            Assert.That(db, Is.EqualTo(bias.Grad!.ToArray()), "dbias");
        });
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void ReluKeepsA16BitInputIn16BitsAndItsGradientIsTheFloat32Ones(DType dt)
    {
        var source = T([.. Rand.Uniform(71, 200, -2f, 2f), 0f, -0f], 202);
        var upstream = T(Rand.Uniform(72, 202), 202);
        source.RequiresGrad = true;
        Tensor y;
        using (var tape = Tape.Begin())
        {
            using (Autocast.Begin(dt)) y = Ops.Relu(source.To(dt));
            tape.Backward(Ops.Sum(Ops.Mul(y.To(DType.Float32), upstream)));
        }
        var wide = source.To(dt).To(DType.Float32).Detach();
        wide.RequiresGrad = true;
        Tensor want;
        using (var tape = Tape.Begin())
        {
            want = Ops.Relu(wide);
            tape.Backward(Ops.Sum(Ops.Mul(want, upstream)));
        }
        Assert.That(y.DType, Is.EqualTo(dt));
        Assert.That(y.ToArray(), Is.EqualTo(want.ToArray()), "exact");
        Assert.That(source.Grad!.ToArray(), Is.EqualTo(wide.Grad!.ToArray()), "dx from the 16-bit input");
    }

    [Test]
    public void AFloat32ScopeTurnsAutocastOffInsideAndScopesRestoreTheirType()
    {
        var x = T(Rand.Uniform(3, 12), 3, 4);
        var w = T(Rand.Uniform(4, 8), 2, 4);
        using (Autocast.Begin(DType.Float16))
        {
            using (Autocast.Begin(DType.BFloat16)) Assert.That(Ops.Linear(x, w).DType, Is.EqualTo(DType.BFloat16));
            using (Autocast.Begin(DType.Float32)) Assert.That(Ops.Linear(x, w).DType, Is.EqualTo(DType.Float32));
            Assert.That(Ops.Linear(x, w).DType, Is.EqualTo(DType.Float16));
        }
        Assert.That(Autocast.Type, Is.Null);
        Assert.That(() => Autocast.Begin(DType.Int32), Throws.ArgumentException.With.Message.Contains("Int32"));
    }

    [Test]
    public void AParameterIsCastOncePerTapeAndTheCastIsDroppedWhenTheOutermostScopeEnds()
    {
        var w = T(Rand.Uniform(5, 16), 4, 4);
        w.RequiresGrad = true;
        var x = T(Rand.Uniform(6, 8), 2, 4);
        using (var tape = Tape.Begin())
        {
            Tensor y;
            using (Autocast.Begin(DType.BFloat16))
            {
                var h = Ops.Matmul(x, w);
                y = Ops.Sum(Ops.Matmul(h, w));        // the same parameter again: its cast is reused
            }
            Assert.That(tape.Nodes.Count(n => n.Op == "to" && ReferenceEquals(n.Inputs[0], w)), Is.EqualTo(1), "one cast of w on the tape");
            tape.Backward(y);
        }
        Assert.That(w.Grad!.DType, Is.EqualTo(DType.Float32), "the gradient reaching a parameter is Float32");
        // a new scope casts the parameter's current values
        w.AsSpan().Fill(0.25f);
        Tensor z;
        using (Autocast.Begin(DType.BFloat16)) z = Ops.Matmul(x, w);
        using (Tape.NoGrad())
            Assert.That(z.ToArray(), Is.EqualTo(Ops.Matmul(x.To(DType.BFloat16).To(DType.Float32), w).To(DType.BFloat16).ToArray()), "w = 0.25 everywhere now");
    }

    [Test]
    public void ALinearWeightIsReadInFloat32AndRoundedByTheCpuGemm()
    {
        // The CPU's GEMM rounds a Float32 operand beside a 16-bit one as it packs it: linear's weight is never cast, and its
        // backward reads the parameter itself; the bits are those of the cast weight.
        var w = T(Rand.Uniform(7, 6 * 5, -1f, 1f), 6, 5);
        var x = T(Rand.Uniform(8, 3 * 5, -1f, 1f), 3, 5);
        var upstream = T(Rand.Uniform(9, 3 * 6), 3, 6);
        w.RequiresGrad = x.RequiresGrad = true;
        Assert.That(Device.Backend.RoundsGemmOperands, Is.True);
        Tensor y;
        float[] dx, dw;
        using (var tape = Tape.Begin())
        {
            using (Autocast.Begin(DType.BFloat16)) y = Ops.Linear(x, w);
            Assert.That(tape.Nodes.Any(n => n.Op == "to" && ReferenceEquals(n.Inputs[0], w)), Is.False, "no cast of w");
            tape.Backward(Ops.Sum(Ops.Mul(y.To(DType.Float32), upstream)));
            (dx, dw) = (x.Grad!.ToArray(), w.Grad!.ToArray());
        }
        // the reference: both operands cast first (what a backend that cannot round while packing is given)
        var xr = T(x.ToArray(), 3, 5);
        var wr = T(w.ToArray(), 6, 5);
        xr.RequiresGrad = wr.RequiresGrad = true;
        Tensor want;
        using (var tape = Tape.Begin())
        {
            want = Ops.Linear(xr.To(DType.BFloat16), wr.To(DType.BFloat16));
            tape.Backward(Ops.Sum(Ops.Mul(want.To(DType.Float32), upstream)));
        }
        Assert.Multiple(() =>
        {
            Assert.That(y.ToArray(), Is.EqualTo(want.ToArray()), "forward");
            Assert.That(dx, Is.EqualTo(xr.Grad!.ToArray()), "dx from the rounded weight");
            Assert.That(dw, Is.EqualTo(wr.Grad!.ToArray()), "dw");
        });
    }

    [TestCase(DType.BFloat16, 3e-2)]
    [TestCase(DType.Float16, 5e-3)]
    public void GradientsOfASmallNetworkUnderAutocastMatchFloat32FiniteDifferences(DType dt, double rtol)
    {
        int n = 5, c = 6, hidden = 8, classes = 3;
        var values = new[] { Rand.Uniform(21, n * c), Rand.Uniform(22, hidden * c, -0.6f, 0.6f), Rand.Uniform(23, hidden), Rand.Uniform(24, classes * hidden, -0.6f, 0.6f) };
        int[][] shapes = [[n, c], [hidden, c], [hidden], [classes, hidden]];
        using var labels = Idx(0, 2, 1, 1, 0);
        var ps = values.Select((v, i) => T(v, shapes[i])).ToArray();
        foreach (var p in ps) p.RequiresGrad = true;
        Tensor Loss(Tensor[] t) =>
            Ops.CrossEntropy(Ops.Linear(Ops.LayerNorm(Ops.Gelu(Ops.Linear(t[0], t[1], t[2])), [hidden]), t[3]), labels);
        using (var tape = Tape.Begin())
        {
            Tensor loss;
            using (Autocast.Begin(dt)) loss = Loss(ps);
            Assert.That(loss.DType, Is.EqualTo(DType.Float32));
            tape.Backward(loss);
        }
        for (int i = 0; i < ps.Length; i++)
        {
            Assert.That(ps[i].Grad!.DType, Is.EqualTo(DType.Float32));
            var g = ps[i].Grad!.ToArray();
            var data = values[i];
            double scale = 0;
            var fd = new double[data.Length];
            for (int e = 0; e < data.Length; e++)
            {
                fd[e] = GradCheck.Derivative(data, e, 1e-2, () =>
                {
                    using var scope = TensorScope.Begin();
                    var t = values.Select((v, j) => T(v, shapes[j])).ToArray();
                    return Loss(t).Item();
                });
                scale = Math.Max(scale, Math.Abs(fd[e]));
            }
            for (int e = 0; e < data.Length; e++)
                Assert.That(g[e], Is.EqualTo(fd[e]).Within(rtol * scale + 1e-3), $"input {i} element {e} under {dt}");
        }
    }

    [Test]
    public void WhatTheTapeSavesIsSixteenBitWhereTheOpsInputIsSixteenBit()
    {
        int n = 6, c = 8, hidden = 12;
        var x = T(Rand.Uniform(31, n * c), n, c);
        var w1 = Tensor.FromArray(Rand.Uniform(32, hidden * c), new Shape(hidden, c), Device, MemoryCategory.Parameter);
        var w2 = Tensor.FromArray(Rand.Uniform(33, c * hidden), new Shape(c, hidden), Device, MemoryCategory.Parameter);
        x.RequiresGrad = w1.RequiresGrad = w2.RequiresGrad = true;
        long plain, mixed;
        using (var tape = Tape.Begin())
        {
            Ops.Linear(Ops.Gelu(Ops.Linear(x, w1)), w2);
            plain = tape.SavedBytes;
            Assert.That(tape.SavedBytesByType(), Is.EqualTo(new[] { (DType.Float32, plain) }));
        }
        using (var tape = Tape.Begin())
        using (Autocast.Begin(DType.BFloat16))
        {
            Ops.Linear(Ops.Gelu(Ops.Linear(x, w1)), w2);
            mixed = tape.SavedBytes;
            Assert.That(tape.SavedBytesByType(), Is.EqualTo(new[] { (DType.BFloat16, mixed) }), "the bytes by type add up to the total");
            Assert.That(tape.Nodes.Where(nd => nd.SavedBytes > 0).SelectMany(nd => nd.SavedTensors)
                    .Where(t => t is not null && t.Block.BaseCategory != MemoryCategory.Parameter).Select(t => t!.DType).Distinct(),
                Is.EqualTo(new[] { DType.BFloat16 }), "every saved activation is 16-bit");
        }
        // Float32: x, the hidden pre-activation and the GELU output, 4 bytes each (parameters referenced);
        // bfloat16: the same three at 2 bytes. The CPU's GEMM rounds the Float32 weights as it packs them, so no 16-bit
        // copies are held (a backend that casts them, as PyTorch does, holds 2 bytes a weight more).
        Assert.That(plain, Is.EqualTo(4L * (n * c + 2 * n * hidden)));
        Assert.That(mixed, Is.EqualTo(2L * (n * c + 2 * n * hidden)));
    }

    RegionHarness Harness() => new(Device, 5, [2, 8, 12], RegionHarness.MlpParameters(12, 20));

    static RegionHarness.Result Run(RegionHarness h, RunMode mode, DType dt) =>
        h.Run((x, p) =>
        {
            using (Autocast.Begin(dt))
                return RegionHarness.Region(mode, "mlp", x, 1, mode == RunMode.Plain ? null : KeepMask.Strided(8, 2, 0), z => RegionHarness.Mlp(z, p)).To(DType.Float32);
        });

    [TestCase(RunMode.SparseCache)]
    [TestCase(RunMode.Recompute)]
    [TestCase(RunMode.Checkpoint)]
    public void TheSbpOracleHoldsUnderAutocast(RunMode mode)
    {
        var h = Harness();
        var oracle = Run(h, RunMode.Oracle, DType.BFloat16);
        var sbp = Run(h, mode, DType.BFloat16);
        RegionHarness.AssertSameGradients(oracle, sbp, $"{mode} vs GradMask, both under bfloat16 autocast");
        if (mode == RunMode.SparseCache)
        {
            // GELU saves the widening of fc1's 16-bit output: its kept positions are gathered from the 16-bit tensor
            var gelu = sbp.Nodes.Single(nd => nd.Op == "gelu");
            Assert.That(gelu.Compact, Is.True);
            Assert.That(gelu.Bytes, Is.EqualTo(2L * gelu.Saved.Single().Numel), "2 bytes per kept element");
        }
        var plain = Run(h, RunMode.Plain, DType.BFloat16);
        var float32 = h.Run((x, p) => RegionHarness.Mlp(x, p));
        Assert.That(plain.Output, Is.EqualTo(oracle.Output), "the oracle's forward is the plain autocast forward");
        Assert.That(plain.Output, Is.Not.EqualTo(float32.Output), "autocast changed the forward");
    }

    [TestCase(RunMode.SparseCache)]
    [TestCase(RunMode.Recompute)]
    public void TheSbpOracleHoldsForAttentionOverAnOddNumberOfKeysUnderAutocast(RunMode mode)
    {
        // 9 keys: the 16-bit P saved by attention has odd rows, so its kept query rows cannot move as Float32 pairs
        var h = new RegionHarness(Device, 7, [2, 9, 8], ("wq", [8, 8]), ("wk", [8, 8]));
        RegionHarness.Result Attend(RunMode m) => h.Run((x, p) =>
        {
            using (Autocast.Begin(DType.BFloat16))
                return RegionHarness.Region(m, $"attention {m}", x, 1, m == RunMode.Plain ? null : KeepMask.Strided(9, 2, 0), z =>
                {
                    var q = Ops.Reshape(Ops.Linear(z, p["wq"]), 2, 1, 9, 8);
                    var kv = Ops.Reshape(Ops.Linear(z, p["wk"]), 2, 1, 9, 8);
                    return Ops.Reshape(Ops.ScaledDotProductAttention(q, kv, kv), 2, 9, 8);
                }).To(DType.Float32);
        });
        var oracle = Attend(RunMode.Oracle);
        var sbp = Attend(mode);
        RegionHarness.AssertSameGradients(oracle, sbp, $"{mode} vs GradMask, both under bfloat16 autocast");
        if (mode == RunMode.SparseCache)
        {
            var attention = sbp.Nodes.Single(nd => nd.Op == "scaled_dot_product_attention");
            Assert.That(attention.Compact, Is.True);
            // saved: q and P at the kept query rows, k = v whole (one block), all at 2 bytes an element
            var saved = attention.Saved;
            Assert.That(saved[3], Is.EqualTo(new Shape(2, 1, 5, 9)), "P at the kept rows");
            Assert.That(attention.Bytes, Is.EqualTo(2L * (saved[0].Numel + saved[1].Numel + saved[3].Numel)), "q, k = v and P held in 16 bits");
        }
    }

    [Test]
    public void AParameterCastMadeInARegionRunThatIsDroppedIsMadeAgain()
    {
        // A body that rolls its positions: the region's first run is dropped and run again with the roll undone; the
        // weight's cast from the dropped run left the tape with it, so the second run must cast the weight anew.
        var w = T(Rand.Uniform(41, 36, -0.5f, 0.5f), 6, 6);
        w.RequiresGrad = true;
        var x = T(Rand.Uniform(42, 96), 2, 8, 6);
        x.RequiresGrad = true;
        float[] Grad(RegionMode mode, string name)
        {
            using (var tape = Tape.Begin())
            {
                Tensor loss;
                using (Autocast.Begin(DType.BFloat16))
                    loss = Ops.Sum(SbpRegion.Run(name, x, 1, KeepMask.Strided(8, 2, 0), z => Ops.Roll(Ops.Linear(z, w), [1], [1]), new RegionOptions(mode)));
                tape.Backward(loss);
            }
            var g = w.Grad?.ToArray() ?? [];
            w.ZeroGrad();
            x.ZeroGrad();
            return g;
        }
        var oracle = Grad(RegionMode.Oracle, "rolled");
        var sbp = Grad(RegionMode.SparseCache, $"rolled {Guid.NewGuid()}");   // a name never seen: no hint learned yet
        Assert.That(sbp, Has.Length.EqualTo(36), "the weight got a gradient");
        Assert.That(sbp, Is.EqualTo(oracle).Within(1e-5));
    }
}
