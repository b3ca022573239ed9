using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Engine.Tests.Stochastic.RegionHarness;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// What a region holds while its body runs, not only after: eager compaction (sparse cache),
/// recompute's unrecorded first forward, and the region output's handle. Gradients must not change.
/// </summary>
public class EagerCompactionTests : DeviceTest
{
    const int B = 2, N = 16, C = 12;

    static readonly (string Name, int[] Shape)[] MlpParameters = RegionHarness.MlpParameters(C, 24);

    /// <summary>One MLP region under a fresh tape: gradients, final and peak saved bytes, and the region's report.</summary>
    (float[] XGrad, float[] W1Grad, long Saved, long PeakSaved, RegionReport Report) RunMlp(RegionOptions options, KeepMask mask, string name = "mlp")
    {
        var h = new RegionHarness(Device, 5, [B, N, C], MlpParameters);
        long saved = 0, peak = 0;
        RegionReport? report = null;
        var r = h.Run((x, p) =>
        {
            var y = SbpRegion.Run(name, x, 1, mask, t => Mlp(t, p), options);
            var tape = Tape.Current!;
            (saved, peak, report) = (tape.SavedBytes, tape.PeakSavedBytes, tape.Regions.Single());
            return y;
        });
        return (r.XGrad, r.Grads["fc1.w"], saved, peak, report!);
    }

    [Test]
    public void EagerCompactionNeverHoldsTheRegionInFullAndGivesTheSameGradients()
    {
        var mask = KeepMask.Strided(N, 4, 1);
        var late = RunMlp(new RegionOptions(EagerCompaction: false), mask);
        var eager = RunMlp(new RegionOptions(EagerCompaction: true), mask);
        Assert.That(eager.XGrad, Is.EqualTo(late.XGrad), "input gradient");
        Assert.That(eager.W1Grad, Is.EqualTo(late.W1Grad), "parameter gradient");
        Assert.That(eager.Saved, Is.EqualTo(late.Saved), "what the tape holds after the region is the same");
        Assert.That(eager.Report.FullSavedBytes, Is.EqualTo(late.Report.FullSavedBytes), "the report still counts full backprop's bytes");
        Assert.That(late.PeakSaved, Is.GreaterThanOrEqualTo(late.Report.FullSavedBytes!.Value), "compacting at the end holds the whole region in full first");
        // Eager: at most one op's full saved tensors on top of the compact ones (the largest is [B, N, 24]).
        long largestOp = B * N * 24 * sizeof(float);
        Assert.That(eager.PeakSaved, Is.LessThanOrEqualTo(eager.Saved + largestOp));
        Assert.That(eager.PeakSaved, Is.LessThan(late.PeakSaved));
    }

    [Test]
    public void RecomputeRecordsNothingInFullWhileTheBodyRuns()
    {
        var mask = KeepMask.Strided(N, 4, 1);
        var sparse = RunMlp(new RegionOptions(RegionMode.SparseCache), mask);
        var recompute = RunMlp(new RegionOptions(RegionMode.Recompute), mask);
        Assert.That(recompute.XGrad, Is.EqualTo(sparse.XGrad).Within(1e-6f));
        Assert.That(recompute.Report.FullSavedBytes, Is.EqualTo(sparse.Report.FullSavedBytes), "full backprop's bytes are counted without recording");
        long keptInput = B * (N / 4) * C * sizeof(float), index = (N / 4) * sizeof(int);
        Assert.That(recompute.Saved, Is.EqualTo(keptInput + index), "the kept input and its index buffer");
        Assert.That(recompute.PeakSaved, Is.EqualTo(recompute.Saved), "the first forward saved nothing for backward");
    }

    [Test]
    public void AWrongGuessRunsTheBodyOnceMoreWithTheSameRandomMasksAndIsRemembered()
    {
        // Attention in the body: keys and values need their full saved tensors, which eager
        // compaction cannot know the first time. The body also draws drop-path masks.
        int calls = 0;
        string name = $"block-{Guid.NewGuid():N}";
        var mask = KeepMask.Strided(RegionBlockTests.N, 2, 1);
        Result Run(RunMode mode, bool eager) =>
            new RegionHarness(Device, 21, [RegionBlockTests.B, RegionBlockTests.N, RegionBlockTests.C], RegionBlockTests.BlockParameters).Run((x, p) =>
            {
                var rng = new RandomSource(3);
                Tensor Body(Tensor h) { calls++; return RegionBlockTests.Block(h, p, rng); }
                return mode == RunMode.Oracle
                    ? SbpRegion.Run(name, x, 1, mask, Body, new RegionOptions(RegionMode.Oracle))
                    : SbpRegion.Run(name, x, 1, mask, Body, new RegionOptions(EagerCompaction: eager));
            });
        var oracle = Run(RunMode.Oracle, false);
        var late = Run(RunMode.SparseCache, false);
        calls = 0;
        var first = Run(RunMode.SparseCache, true);
        Assert.That(calls, Is.EqualTo(2), "the first eager run guesses wrong for k and v and runs the body again");
        calls = 0;
        var second = Run(RunMode.SparseCache, true);
        Assert.That(calls, Is.EqualTo(1), "the region remembers which ops keep their full saved tensors");
        foreach (var r in new[] { first, second })
        {
            Assert.That(r.Output, Is.EqualTo(late.Output), "same forward, same drop-path masks");
            Assert.That(r.XGrad, Is.EqualTo(late.XGrad));
            foreach (var (n, g) in late.Grads) Assert.That(r.Grads[n], Is.EqualTo(g), n);
            Assert.That(r.SavedBytes, Is.EqualTo(late.SavedBytes));
        }
        AssertSameGradients(oracle, second, "eager sparse cache vs the oracle");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ACompactOpSharesATensorThatADenseOpKeepsWhole(bool eager)
    {
        // h = LN(x) feeds the keys/values (dense gradient: saved whole) and the queries (compact):
        // the queries' linear must not save a compact copy of h beside the whole one; it gathers
        // the kept rows of the shared h in backward.
        const int heads = 2, d = C / heads;
        (string, int[])[] parameters = [("ln.g", [C]), ("ln.b", [C]), ("wk", [C, C]), ("wq", [C, C])];
        string name = $"attn-{Guid.NewGuid():N}";
        var mask = KeepMask.Strided(N, 4, 1);
        Tensor Body(Tensor x, IReadOnlyDictionary<string, Tensor> p)
        {
            var h = Ops.LayerNorm(x, [C], p["ln.g"], p["ln.b"]);
            Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, B, N, heads, d), 0, 2, 1, 3);
            var k = Heads(Ops.Linear(h, p["wk"]));
            var q = Heads(Ops.Linear(h, p["wq"]));
            return Ops.Reshape(Ops.Permute(Ops.ScaledDotProductAttention(q, k, k), 0, 2, 1, 3), B, N, C);
        }
        Result Run(RegionMode mode) => new RegionHarness(Device, 9, [B, N, C], parameters)
            .Run((x, p) => SbpRegion.Run(name, x, 1, mask, t => Body(t, p), new RegionOptions(mode, EagerCompaction: eager)));
        var oracle = Run(RegionMode.Oracle);
        Run(RegionMode.SparseCache);   // an eager first run learns which ops are dense
        var sbp = Run(RegionMode.SparseCache);
        AssertSameGradients(oracle, sbp, $"shared whole tensor (eager {eager})");
        var queries = sbp.Nodes.Where(n => n.Op == "linear" && n.Compact).ToList();
        Assert.That(queries, Has.Count.EqualTo(1), "the queries' projection runs compact");
        Assert.That(queries[0].Saved, Does.Contain(new Shape(B, N, C)), "it holds the shared whole h, not a compact copy");
        Assert.That(sbp.Nodes.SelectMany(n => n.Saved), Has.None.EqualTo(new Shape(B, N / 4, C)), "no compact copy of h anywhere");
    }

    [Test]
    public void TheRegionOutputIsFreedWhenTheCallerDisposesIt()
    {
        var h = new RegionHarness(Device, 5, [B, N, C], MlpParameters);
        long freed = -1;
        h.Run((x, p) =>
        {
            var y = SbpRegion.Run("mlp", x, 1, KeepMask.Strided(N, 2, 0), t => Mlp(t, p));
            var z = Ops.Mul(y, 2f);   // saves nothing: only the caller's handle holds y
            long before = Device.Pool.InUseBytes;
            y.Dispose();   // the caller's scope is still open
            freed = before - Device.Pool.InUseBytes;
            return z;
        });
        Assert.That(freed, Is.EqualTo(B * N * C * sizeof(float)), "the region output's memory goes with the caller's handle, not when its scope ends");
    }

    [Test]
    public void ConsumeFreesTheIntermediateButNotWhatTheTapeSaved()
    {
        var x = T([1f, -2f, 3f, -4f], 4);
        x.RequiresGrad = true;
        using var tape = Tape.Begin();
        var a = Ops.Mul(x, 2f);
        var y = a.Consume(Ops.Relu).Consume(t => Ops.Sum(Ops.Mul(t, t)));
        Assert.That(a.IsDisposed, Is.True);
        tape.Backward(y);
        // y = sum(relu(2x)^2): dy/dx = 8x where x > 0
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 8f, 0f, 24f, 0f }));
        x.ZeroGrad();
    }

    [Test]
    public void TheProfileTimesEveryRecordedOpInBothPhases()
    {
        var mask = KeepMask.Strided(N, 4, 1);
        var h = new RegionHarness(Device, 5, [B, N, C], MlpParameters);
        OpProfile? profile = null;
        int nodes = 0;
        h.Run((x, p) =>
        {
            Tape.Current!.Profile = profile = new OpProfile();
            var y = SbpRegion.Run("mlp", x, 1, mask, t => Mlp(t, p));
            nodes = Tape.Current.Nodes.Count;
            return y;
        });
        var rows = profile!.Rows();
        int forward = rows.Where(r => r.Phase == OpProfile.Phase.Forward && !r.Internal).Sum(r => r.Calls);
        int backward = rows.Where(r => r.Phase == OpProfile.Phase.Backward).Sum(r => r.Calls);
        Assert.That(forward, Is.GreaterThanOrEqualTo(nodes), "every op recorded in the forward");
        Assert.That(backward, Is.EqualTo(forward + 1), "every node runs backward once (the region output node is recorded internally)");
        Assert.That(rows.Any(r => r.InRegion && r.Compact && r.Op == "linear"), "the region's linears run compact");
        Assert.That(rows.Any(r => r.Internal && r.Op.StartsWith("sbp.gather", StringComparison.Ordinal)), "eager gathers have their own row");
        Assert.That(rows.All(r => r.Milliseconds >= 0));
        // The rows carry the counted work: the compact linears' backward is the kept quarter of their forward x 2 (dx and dW).
        long Macs(OpProfile.Phase phase) => rows.Where(r => r.Op == "linear" && r.Phase == phase).Sum(r => r.Macs);
        Assert.That(Macs(OpProfile.Phase.Forward), Is.EqualTo((long)B * N * (C * 24 + 24 * C)));
        Assert.That(Macs(OpProfile.Phase.Backward), Is.EqualTo(2L * B * (N / 4) * (C * 24 + 24 * C)));
        Assert.That(rows.Where(r => !r.Internal).All(r => r.Bytes > 0), "every op row moves bytes");
        Assert.That(profile.Format(), Does.Contain("GMAC").And.Contain("GB/s").And.Contain("Per region"));
        var region = profile.RegionRows().Where(r => r.Region == "mlp").ToList();
        Assert.That(region.Select(r => r.Phase), Is.EquivalentTo(new[] { OpProfile.Phase.Forward, OpProfile.Phase.Backward }));
        Assert.That(region.Sum(r => r.Macs), Is.EqualTo(Macs(OpProfile.Phase.Forward) + Macs(OpProfile.Phase.Backward)), "the region holds all the linears' work");
        // By shape: the MLP's two linears (C -> 24, 24 -> C) get a row each, named with their input shapes, with the same totals.
        profile.ByShape = true;
        var linears = profile.Rows().Where(r => r.Op.StartsWith("linear ", StringComparison.Ordinal) && r.Phase == OpProfile.Phase.Forward).ToList();
        Assert.That(linears, Has.Count.EqualTo(2));
        Assert.That(linears.Select(r => r.Op), Has.Some.Contain($"[24, {C}]").And.Some.Contain($"[{C}, 24]"));
        Assert.That(linears.Sum(r => r.Macs), Is.EqualTo(Macs(OpProfile.Phase.Forward)));
    }
}
