using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Engine.Tests.Stochastic.RegionHarness;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// The oracle (docs/SBP.md invariant 3) on whole blocks: a pre-norm transformer block (layer
/// norm, multi-head attention with a bias, MLP, residuals, drop-path) with the mask on the block
/// output (CVPR) or on the branches (NeurIPS), and a per-frame 2-D conv block with frozen batch
/// norm and a residual, in every caching mode.
/// </summary>
public class RegionBlockTests : DeviceTest
{
    internal const int B = 2, N = 6, C = 8, Heads = 2, Hidden = 12;

    internal static readonly (string, int[])[] BlockParameters =
    [
        ("ln1.g", [C]), ("ln1.b", [C]), ("qkv.w", [3 * C, C]), ("qkv.b", [3 * C]), ("bias", [Heads, N, N]),
        ("proj.w", [C, C]), ("proj.b", [C]), ("ln2.g", [C]), ("ln2.b", [C]),
        ("fc1.w", [Hidden, C]), ("fc1.b", [Hidden]), ("fc2.w", [C, Hidden]), ("fc2.b", [C]),
    ];

    /// <summary>LN, qkv, attention (before the output projection), from x [B, N, C].</summary>
    static Tensor AttentionCore(Tensor x, IReadOnlyDictionary<string, Tensor> p)
    {
        int b = x.Shape[0], n = x.Shape[1];
        var h = Ops.LayerNorm(x, [C], p["ln1.g"], p["ln1.b"]);
        var qkv = Ops.Permute(Ops.Reshape(Ops.Linear(h, p["qkv.w"], p["qkv.b"]), b, n, 3, Heads, C / Heads), 2, 0, 3, 1, 4);
        Tensor Part(int i) => Ops.Reshape(Ops.Slice(qkv, 0, i, 1), b, Heads, n, C / Heads);
        var a = Ops.ScaledDotProductAttention(Part(0), Part(1), Part(2), p["bias"]);
        return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, n, C);
    }

    static Tensor MlpBranch(Tensor x, IReadOnlyDictionary<string, Tensor> p, RandomSource rng)
    {
        var h = Ops.LayerNorm(x, [C], p["ln2.g"], p["ln2.b"]);
        var m = Ops.Linear(Ops.Gelu(Ops.Linear(h, p["fc1.w"], p["fc1.b"])), p["fc2.w"], p["fc2.b"]);
        return Ops.DropPath(m, 0.3f, rng);
    }

    internal static Tensor Block(Tensor x, IReadOnlyDictionary<string, Tensor> p, RandomSource rng)
    {
        var x1 = Ops.Add(x, Ops.DropPath(Ops.Linear(AttentionCore(x, p), p["proj.w"], p["proj.b"]), 0.3f, rng));
        return Ops.Add(x1, MlpBranch(x1, p, rng));
    }

    /// <summary>Two blocks with the mask on each block's output, as the CVPR Video Swin setup.</summary>
    static Tensor BlockOutputModel(RunMode mode, Tensor x, IReadOnlyDictionary<string, Tensor> p, KeepMask? mask)
    {
        var rng = new RandomSource(3);
        var y = Region(mode, "block0", x, 1, mask, h => Block(h, p, rng));
        return Region(mode, "block1", y, 1, mask, h => Block(h, p, rng));
    }

    /// <summary>Masks on the attention core (before the projection) and on the MLP branch (before the add), as the NeurIPS ViT setup.</summary>
    static Tensor BranchOutputModel(RunMode mode, Tensor x, IReadOnlyDictionary<string, Tensor> p, KeepMask? mask)
    {
        var rng = new RandomSource(3);
        var a = Region(mode, "attn", x, 1, mask, h => AttentionCore(h, p));
        var x1 = Ops.Add(x, Ops.DropPath(Ops.Linear(a, p["proj.w"], p["proj.b"]), 0.3f, rng));
        return Ops.Add(x1, Region(mode, "mlp", x1, 1, mask, h => MlpBranch(h, p, rng)));
    }

    public static IEnumerable<TestCaseData> Placements()
    {
        foreach (var placement in new[] { "block-output", "branch-output" })
            foreach (var mode in new[] { RunMode.SparseCache, RunMode.Recompute, RunMode.Checkpoint })
                foreach (var (stride, offset) in new[] { (2, 1), (3, 0) })
                    yield return new TestCaseData(placement, mode, stride, offset).SetArgDisplayNames(placement, mode.ToString(), $"keep 1/{stride} offset {offset}");
    }

    Result RunTransformer(string placement, RunMode mode, KeepMask? mask)
    {
        var h = new RegionHarness(Device, 21, [B, N, C], BlockParameters);
        return h.Run((x, p) => placement == "block-output" ? BlockOutputModel(mode, x, p, mask) : BranchOutputModel(mode, x, p, mask));
    }

    [TestCaseSource(nameof(Placements))]
    public void TransformerBlockMatchesTheOracle(string placement, RunMode mode, int stride, int offset)
    {
        var mask = KeepMask.Strided(N, stride, offset);
        var oracle = RunTransformer(placement, RunMode.Oracle, mask);
        var sbp = RunTransformer(placement, mode, mask);
        AssertSameGradients(oracle, sbp, $"{placement} {mode}");
        var plain = RunTransformer(placement, RunMode.Plain, null);
        Assert.That(sbp.Output, Is.EqualTo(plain.Output), "the forward never changes with SBP on");
        Assert.That(sbp.Grads["fc1.w"], Is.Not.EqualTo(plain.Grads["fc1.w"]), "the mask must change parameter gradients (else the test proves nothing)");
    }

    [TestCase("block-output")]
    [TestCase("branch-output")]
    public void TransformerKeepOneIsPlainBackprop(string placement)
    {
        var plain = RunTransformer(placement, RunMode.Plain, null);
        foreach (var mode in new[] { RunMode.SparseCache, RunMode.Recompute, RunMode.Checkpoint })
            AssertSameGradients(plain, RunTransformer(placement, mode, KeepMask.All(N)), $"{placement} {mode} keep 1", 1e-5, 1e-6);
    }

    [TestCase("block-output")]
    [TestCase("branch-output")]
    public void SparseCacheHoldsLessThanFullBackprop(string placement)
    {
        var plain = RunTransformer(placement, RunMode.Plain, null);
        var sbp = RunTransformer(placement, RunMode.SparseCache, KeepMask.Strided(N, 2, 1));
        Assert.That(sbp.SavedBytes, Is.LessThan(plain.SavedBytes));
        foreach (var r in sbp.Regions) Assert.That(r.SavedBytes, Is.LessThan(r.FullSavedBytes!.Value), r.ToString());
    }

    static readonly (string, int[])[] ConvParameters =
    [
        ("conv1.w", [4, 4, 3, 3]), ("bn1.g", [4]), ("bn1.b", [4]), ("conv2.w", [4, 4, 1, 1]), ("bn2.g", [4]), ("bn2.b", [4]),
    ];

    /// <summary>A per-frame ResNet basic block over x [B, T, C, H, W] with frozen batch norm and a residual.</summary>
    static Tensor ConvBlock(Tensor x, IReadOnlyDictionary<string, Tensor> p)
    {
        int b = x.Shape[0], t = x.Shape[1];
        var frames = Ops.Reshape(x, b * t, 4, 5, 5);
        var h = Ops.Relu(Ops.BatchNorm(Ops.Conv2d(frames, p["conv1.w"], padding: [1, 1]), p["bn1.g"], p["bn1.b"], p["rm"], p["rv"], BatchNormMode.Frozen));
        h = Ops.BatchNorm(Ops.Conv2d(h, p["conv2.w"]), p["bn2.g"], p["bn2.b"], p["rm"], p["rv"], BatchNormMode.Frozen);
        return Ops.Reshape(Ops.Relu(Ops.Add(h, frames)), b, t, 4, 5, 5);
    }

    Result RunConv(RunMode mode, KeepMask? mask)
    {
        var h = new RegionHarness(Device, 31, [2, 6, 4, 5, 5], ConvParameters);
        h.Constants["rm"] = [0.1f, -0.1f, 0.2f, 0f];
        h.Constants["rv"] = [1.2f, 0.8f, 1f, 1.5f];
        return h.Run((x, p) =>
        {
            var y = Region(mode, "stage1.block0", x, 1, mask, f => ConvBlock(f, p));
            return Region(mode, "stage1.block1", y, 1, mask, f => ConvBlock(f, p));
        });
    }

    [TestCase(RunMode.SparseCache)]
    [TestCase(RunMode.Recompute)]
    [TestCase(RunMode.Checkpoint)]
    public void PerFrameConvBlockMatchesTheOracle(RunMode mode)
    {
        var mask = KeepMask.Strided(6, 3, 1);
        AssertSameGradients(RunConv(RunMode.Oracle, mask), RunConv(mode, mask), $"conv block {mode}");
        var all = KeepMask.All(6);
        AssertSameGradients(RunConv(RunMode.Plain, null), RunConv(mode, all), $"conv block {mode} keep 1", 1e-5, 1e-6);
    }
}
