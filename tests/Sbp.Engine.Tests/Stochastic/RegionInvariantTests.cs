using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Engine.Tests.Stochastic.RegionHarness;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>docs/SBP.md invariants 4-7 and the refusals: sparsity, linearity, determinism, exact memory.</summary>
public class RegionInvariantTests : DeviceTest
{
    const int B = 2, N = 8, C = 6;

    static readonly (string Name, int[] Shape)[] MlpParameters = RegionHarness.MlpParameters(C, 10);

    RegionHarness MlpHarness() => new(Device, 41, [B, N, C], MlpParameters);

    static Result RunMlp(RegionHarness h, RunMode mode, KeepMask? mask) => h.Run((x, p) => Region(mode, "mlp", x, 1, mask, t => Mlp(t, p)));

    static bool Dropped(KeepMask mask, int flat) => !mask.IsKept(flat / C % N);

    [TestCase(RunMode.SparseCache)]
    [TestCase(RunMode.Recompute)]
    public void InputGradientIsExactlyZeroAtDroppedPositions(RunMode mode)
    {
        var mask = KeepMask.Strided(N, 4, 2);
        var r = RunMlp(MlpHarness(), mode, mask);
        for (int i = 0; i < r.XGrad.Length; i++)
            if (Dropped(mask, i)) Assert.That(r.XGrad[i], Is.EqualTo(0f), $"dx[{i}] at a dropped position");
            else Assert.That(r.XGrad[i], Is.Not.EqualTo(0f), $"dx[{i}] at a kept position");
    }

    [Test]
    public void ChangingInputsOrUpstreamGradientsAtDroppedPositionsChangesNoGradient()
    {
        var mask = KeepMask.Strided(N, 4, 2);
        var h = MlpHarness();
        var before = RunMlp(h, RunMode.SparseCache, mask);
        var upstream = Rand.Uniform(41 + 7919, B * N * C);
        var x = (float[])h.X.Clone();
        for (int i = 0; i < x.Length; i++)
            if (Dropped(mask, i)) { x[i] += 3f; upstream[i] -= 5f; }
        h.X = x;
        h.Upstream = upstream;
        var after = RunMlp(h, RunMode.SparseCache, mask);
        Assert.That(after.Output, Is.Not.EqualTo(before.Output), "the forward sees the changed inputs");
        foreach (var (name, g) in before.Grads) Assert.That(after.Grads[name], Is.EqualTo(g), name);
        Assert.That(after.XGrad, Is.EqualTo(before.XGrad));
    }

    [Test]
    public void GradientsOfDisjointMasksAddUpAndAStridedFamilyGivesTheFullGradient()
    {
        var h = MlpHarness();
        var full = RunMlp(h, RunMode.Plain, null);
        var parts = Enumerable.Range(0, 4).Select(o => RunMlp(h, RunMode.SparseCache, KeepMask.Strided(N, 4, o))).ToList();
        foreach (var name in full.Grads.Keys)
        {
            var sum = new float[full.Grads[name].Length];
            foreach (var part in parts) for (int i = 0; i < sum.Length; i++) sum[i] += part.Grads[name][i];
            AssertClose(full.Grads[name], sum, $"sum over the 4 offsets of {name}", 1e-4, 1e-5);
        }
        var union = RunMlp(h, RunMode.SparseCache, KeepMask.Strided(N, 4, 0).Union(KeepMask.Strided(N, 4, 3)));
        var two = new float[union.XGrad.Length];
        for (int i = 0; i < two.Length; i++) two[i] = parts[0].XGrad[i] + parts[3].XGrad[i];
        AssertClose(union.XGrad, two, "g(M1) + g(M2) = g(M1 u M2)", 1e-4, 1e-5);
    }

    [Test]
    public void SameSeedGivesSameMasksAndGradients()
    {
        var policy = new KeepMaskPolicy(MaskKind.Random, 0.5, Seed: 9) { Scope = MaskScope.Layer };
        var a = new KeepMaskGenerator(policy).Next(3, 1, N);
        var b = new KeepMaskGenerator(policy).Next(3, 1, N);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(a.KeptCount, Is.EqualTo(N / 2));
        var h = MlpHarness();
        var ga = RunMlp(h, RunMode.SparseCache, a);
        var gb = RunMlp(h, RunMode.SparseCache, b);
        Assert.That(gb.XGrad, Is.EqualTo(ga.XGrad));
        foreach (var (name, g) in ga.Grads) Assert.That(gb.Grads[name], Is.EqualTo(g), name);
    }

    [TestCase(2)]
    [TestCase(4)]
    public void PositionWiseRegionHoldsExactlyKeepTimesFullPlusTheIndexBuffer(int stride)
    {
        var h = MlpHarness();
        var plain = RunMlp(h, RunMode.Plain, null);
        var sbp = RunMlp(h, RunMode.SparseCache, KeepMask.Strided(N, stride, 1));
        // The harness's loss, sum(y * R), holds R [B, N, C] outside the region in both runs.
        long lossBytes = B * N * C * sizeof(float);
        long full = plain.SavedBytes - lossBytes;
        Assert.That(full % stride, Is.Zero);
        long indexBytes = (N / stride) * sizeof(int);
        Assert.That(sbp.IndexBytes, Is.EqualTo(indexBytes), "one index buffer for the region's layout");
        Assert.That(sbp.SavedBytes - lossBytes, Is.EqualTo(full / stride + indexBytes), "keep x full backprop, plus the index buffer");
        var report = sbp.Regions.Single();
        Assert.That(report.FullSavedBytes, Is.EqualTo(full));
        Assert.That(report.SavedBytes, Is.EqualTo(full / stride));
        Assert.That((report.Kept, report.Size), Is.EqualTo((N / stride, N)));
        Assert.That(sbp.Nodes.Where(n => n.Op is not ("sbp.region_output" or "mul" or "sum")), Has.All.Matches<(string Op, bool Compact, long Bytes, Shape[] Saved)>(n => n.Compact));
    }

    [Test]
    public void RecomputeHoldsOnlyTheInputAtKeptPositions()
    {
        var h = MlpHarness();
        var sbp = RunMlp(h, RunMode.Recompute, KeepMask.Strided(N, 4, 1));
        Assert.That(sbp.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "sbp.recompute", "mul", "sum" }), "the region is one node; the loss follows");
        Assert.That(sbp.Nodes[0].Saved, Is.EqualTo(new[] { new Shape(B, N / 4, C) }));
        Assert.That(sbp.Nodes[0].Bytes, Is.EqualTo(B * (N / 4) * C * sizeof(float)));
        Assert.That(sbp.IndexBytes, Is.EqualTo((N / 4) * sizeof(int)));
    }

    [Test]
    public void AttentionHoldsNoScoresForDroppedQueryRows()
    {
        var h = new RegionHarness(Device, 5, [B, N, C], ("w", [3 * C, C]));
        var mask = KeepMask.Strided(N, 4, 1);
        var r = h.Run((x, p) => SbpRegion.Run("attn", x, 1, mask, t =>
        {
            var qkv = Ops.Permute(Ops.Reshape(Ops.Linear(t, p["w"]), B, N, 3, 2, C / 2), 2, 0, 3, 1, 4);
            Tensor Part(int i) => Ops.Reshape(Ops.Slice(qkv, 0, i, 1), B, 2, N, C / 2);
            return Ops.Reshape(Ops.Permute(Ops.ScaledDotProductAttention(Part(0), Part(1), Part(2)), 0, 2, 1, 3), B, N, C);
        }));
        var attention = r.Nodes.Single(n => n.Op == "scaled_dot_product_attention");
        Assert.That(attention.Compact, Is.True);
        Assert.That(attention.Saved, Is.EqualTo(new[]
        {
            new Shape(B, 2, N / 4, C / 2),   // q at kept rows
            new Shape(B, 2, N, C / 2),       // k in full
            new Shape(B, 2, N, C / 2),       // v in full
            new Shape(B, 2, N / 4, N),       // P: kept rows only, never N x N
        }));
        Assert.That(r.Nodes.Where(n => n.Saved.Any(s => s.Rank == 4 && s[2] == N && s[3] == N)), Is.Empty, "no N x N tensor is held");
    }

    [Test]
    public void MixingOpsAreRefusedWithTheOpTheRegionAndTheReason()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(1, 2 * 3 * 6 * 4 * 4), new Shape(2, 3, 6, 4, 4), Device);
        var w = Tensor.FromArray(Rand.Uniform(2, 4 * 3 * 3 * 1 * 1), new Shape(4, 3, 3, 1, 1), Device);
        w.RequiresGrad = true;
        var mask = KeepMask.Strided(6, 2, 1);
        using var tape = Tape.Begin();
        var conv = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("stage2.block1", x, 2, mask, t => Ops.Conv3d(t, w, padding: [1, 0, 0])))!;
        Assert.That(conv.Message, Does.Contain("stage2.block1").And.Contain("conv3d").And.Contain("axis 2").And.Contain("kernel"));
        var mean = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("head", x, 2, mask, t => Ops.Mul(Ops.Mean(t, [2], keepDim: true), t)))!;
        Assert.That(mean.Message, Does.Contain("head").And.Contain("sum").And.Contain("summed, averaged or maximized"));
        var frames = Tensor.FromArray(Rand.Uniform(3, 6 * 3 * 4 * 4), new Shape(6, 3, 4, 4), Device);
        var g = Tensor.FromArray([1f, 1f, 1f], new Shape(3), Device);
        g.RequiresGrad = true;
        var bn = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("backbone", frames, 0, mask,
            t => Ops.BatchNorm(t, g, null, null, null, BatchNormMode.Train)))!;
        Assert.That(bn.Message, Does.Contain("backbone").And.Contain("batch_norm").And.Contain("BatchNormMode.Frozen"));
        var size = Assert.Throws<ShapeMismatchException>(() => SbpRegion.Run("r", x, 1, mask, t => t))!;
        Assert.That(size.Message, Does.Contain("'r'").And.Contain("6 positions").And.Contain("has 3"));
        Assert.That(tape.SavedBytes, Is.Zero, "a refused region leaves nothing held");
    }

    [Test]
    public void ConvolutionsKeepARegionOnlyAlongAxesTheirKernelDoesNotSpan()
    {
        // Along an axis, a convolution is position-wise only with kernel 1, stride 1 and no padding; it always mixes channels.
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        var clip = Tensor.FromArray(Rand.Uniform(4, 1 * 2 * 4 * 4 * 4), new Shape(1, 2, 4, 4, 4), Device);
        var w3 = Tensor.FromArray(Rand.Uniform(5, 3 * 2 * 1 * 3 * 3), new Shape(3, 2, 1, 3, 3), Device);
        w3.RequiresGrad = true;
        var time = KeepMask.Strided(4, 2, 1);
        Assert.That(SbpRegion.Run("t", clip, 2, time, h => Ops.Conv3d(h, w3, padding: [0, 1, 1])).Shape, Is.EqualTo(new Shape(1, 3, 4, 4, 4)));
        string Spans(string name, Func<Tensor, Tensor> body) => Assert.Throws<SbpRegionException>(() => SbpRegion.Run(name, clip, 2, time, body))!.Message;
        const string conv = "conv3d mixes positions along axis 2 of its input 0 [1, 2, 4, 4, 4], which carries the region's dimension (its kernel, stride or padding spans the axis).";
        Assert.That(Spans("t_stride", h => Ops.Conv3d(h, w3, stride: [2, 1, 1], padding: [0, 1, 1])), Does.Contain(conv));
        Assert.That(Spans("t_pad", h => Ops.Slice(Ops.Conv3d(h, w3, padding: [1, 1, 1]), 2, 1, 4)), Does.Contain(conv));
        var w333 = Tensor.FromArray(Rand.Uniform(9, 3 * 2 * 3 * 3 * 3), new Shape(3, 2, 3, 3, 3), Device);
        w333.RequiresGrad = true;
        Assert.That(Spans("t_kernel", h => Ops.Conv3d(h, w333, padding: [0, 1, 1])), Does.Contain(conv));
        Assert.That(Spans("t_pool", h => Ops.MaxPool3d(h, [2, 1, 1])), Does.Contain("max_pool3d mixes positions along axis 2 of its input 0 [1, 2, 4, 4, 4], which carries the region's dimension (the pooling window spans the axis)."));
        var square = Tensor.FromArray(Rand.Uniform(8, 2 * 2 * 1 * 1 * 1), new Shape(2, 2, 1, 1, 1), Device);
        square.RequiresGrad = true;
        var channels = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("channels", clip, 1, KeepMask.Strided(2, 2, 1), h => Ops.Conv3d(h, square)))!;
        Assert.That(channels.Message, Does.Contain("conv3d mixes positions along axis 1"));
        var image = Tensor.FromArray(Rand.Uniform(6, 1 * 2 * 4 * 6), new Shape(1, 2, 4, 6), Device);
        var w2 = Tensor.FromArray(Rand.Uniform(7, 3 * 2 * 3 * 1), new Shape(3, 2, 3, 1), Device);
        w2.RequiresGrad = true;
        var width = KeepMask.Strided(6, 2, 1);
        Assert.That(SbpRegion.Run("w", image, 3, width, h => Ops.Conv2d(h, w2, padding: [1, 0])).Shape, Is.EqualTo(new Shape(1, 3, 4, 6)), "kernel 1 along the width");
        Assert.Throws<SbpRegionException>(() => SbpRegion.Run("h", image, 2, KeepMask.Strided(4, 2, 1), h => Ops.Conv2d(h, w2, padding: [1, 0])), "kernel 3 along the height");
    }

    [Test]
    public void ATensorMadeInsideARegionCannotBeUsedOutsideIt()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(1, B * N * C), new Shape(B, N, C), Device);
        var w = Tensor.FromArray(Rand.Uniform(2, C * C), new Shape(C, C), Device);
        w.RequiresGrad = true;
        using var tape = Tape.Begin();
        Tensor? inner = null;
        // Intermediates are freed when the body returns; one the body keeps alive on purpose is still refused.
        var y = SbpRegion.Run("r", x, 1, KeepMask.Strided(N, 2, 0), t => Ops.Gelu(inner = TensorScope.Current!.Keep(Ops.Linear(t, w))));
        var e = Assert.Throws<SbpRegionException>(() => Ops.Add(y, inner!))!;
        Assert.That(e.Message, Does.Contain("'r'").And.Contain("add").And.Contain("region's output"));
        Tensor? dropped = null;
        SbpRegion.Run("s", x, 1, KeepMask.Strided(N, 2, 0), t => Ops.Gelu(dropped = Ops.Linear(t, w)));
        Assert.That(dropped!.IsDisposed, Is.True, "an intermediate the body does not keep is freed when the body returns");
    }

    [Test]
    public void EvaluationRunsTheBodyWithoutRecording()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(1, B * N * C), new Shape(B, N, C), Device);
        var y = SbpRegion.Run("r", x, 1, KeepMask.Strided(N, 2, 0), t => Ops.Gelu(t));
        Assert.That(y.ToArray(), Is.EqualTo(Ops.Gelu(x).ToArray()));
    }

    [Test]
    public void RandomMasksAreReplayedNotRedrawnWhenARegionIsReRun()
    {
        // A recompute region with dropout leaves the random source where one forward leaves it.
        var h = new RegionHarness(Device, 5, [B, N, C], ("w", [C, C]));
        var rngA = new RandomSource(4);
        var rngB = new RandomSource(4);
        var mask = KeepMask.Strided(N, 2, 1);
        var oracle = h.Run((x, p) => SbpRegion.Run("d", x, 1, mask, t => Ops.Dropout(Ops.Linear(t, p["w"]), 0.4f, rngA), new RegionOptions(RegionMode.Oracle)));
        var recompute = h.Run((x, p) => SbpRegion.Run("d", x, 1, mask, t => Ops.Dropout(Ops.Linear(t, p["w"]), 0.4f, rngB), new RegionOptions(RegionMode.Recompute)));
        AssertSameGradients(oracle, recompute, "dropout under recompute");
        Assert.That(rngB.Position, Is.EqualTo(rngA.Position));
    }

    [Test]
    public void ReportsNameEveryRegionWithKeptCountAndBytes()
    {
        var h = MlpHarness();
        var r = h.Run((x, p) =>
        {
            var y = SbpRegion.Run("a", x, 1, KeepMask.Strided(N, 2, 0), t => Mlp(t, p));
            return SbpRegion.Run("b", y, 1, KeepMask.Strided(N, 4, 0), t => Mlp(t, p), new RegionOptions(RegionMode.Checkpoint));
        });
        Assert.That(r.Regions.Select(x => (x.Name, x.Mode, x.Kept, x.Size)), Is.EqualTo(new[]
        {
            ("a", RegionMode.SparseCache, N / 2, N), ("b", RegionMode.Checkpoint, N / 4, N),
        }));
        Assert.That(r.Regions[1].SavedBytes, Is.EqualTo(B * N * C * sizeof(float)), "checkpointing holds the region input in full");
        Assert.That(r.Regions[0].ToString(), Does.Contain("a: SparseCache, kept 4/8"));
        Assert.That(MemoryPool.FormatBytes(r.Regions[0].SavedBytes), Is.Not.Empty);
    }

    [TestCase(RegionMode.Recompute)]
    [TestCase(RegionMode.Checkpoint)]
    public void ARegionReRunWhoseInputNeedsNoGradientFreesEverything(RegionMode mode)
    {
        // The first region of a model reads the raw input, which needs no gradient: the re-run still
        // computes one for its leaf copy, and it must be freed, not leaked.
        using (var scope = TensorScope.Begin())
        {
            var x = Tensor.FromArray(Rand.Uniform(1, B * N * C), new Shape(B, N, C), Device);
            var w = Tensor.FromArray(Rand.Uniform(2, C * C), new Shape(C, C), Device);
            w.RequiresGrad = true;
            using (var tape = Tape.Begin())
            {
                var y = SbpRegion.Run("r", x, 1, KeepMask.Strided(N, 2, 0), t => Ops.Gelu(Ops.Linear(t, w)), new RegionOptions(mode));
                tape.Backward(Ops.Sum(y));
            }
            Assert.That(w.Grad, Is.Not.Null);
            Assert.That(x.Grad, Is.Null);
            w.ZeroGrad();
        }
        Assert.That(Device.Pool.InUseBytes, Is.Zero);
    }
}
