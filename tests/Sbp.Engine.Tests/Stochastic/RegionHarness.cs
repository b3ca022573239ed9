using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>How a test runs a region: plain backprop (no region at all) or one of the region modes.</summary>
public enum RunMode { Plain, Oracle, SparseCache, Recompute, Checkpoint }

/// <summary>
/// A fixed problem for SBP tests: input x, named parameters and an upstream gradient R (both
/// seeded), loss = sum(model(x) * R). <see cref="Run"/> records the model under a tape and returns
/// the output, loss, every gradient and what the tape held for backward.
/// </summary>
public sealed class RegionHarness(Device device, int seed, int[] xShape, params (string Name, int[] Shape)[] parameters)
{
    public Device Device { get; } = device;
    public int[] XShape { get; } = xShape;
    public float[] X { get; set; } = Rand.Uniform(seed, Ref.Numel(xShape));
    public Dictionary<string, float[]> Values { get; } = parameters.ToDictionary(p => p.Name, p => Rand.Uniform(seed + p.Name.GetHashCode(StringComparison.Ordinal) % 1000, Ref.Numel(p.Shape), -0.7f, 0.7f));
    /// <summary>Overrides the upstream gradient R (default: seeded uniform values).</summary>
    public float[]? Upstream { get; set; }

    /// <summary>Frozen tensors (running statistics, fixed tables) the model reads but that never get gradients.</summary>
    public Dictionary<string, float[]> Constants { get; } = [];

    public sealed record Result(float[] Output, float Loss, float[] XGrad, Dictionary<string, float[]> Grads, long SavedBytes, long IndexBytes,
        IReadOnlyList<RegionReport> Regions, IReadOnlyList<(string Op, bool Compact, long Bytes, Shape[] Saved)> Nodes);

    /// <summary>
    /// Runs <paramref name="model"/>(x, params) under a tape; the model wraps its region bodies
    /// as <see cref="Region"/> says.
    /// </summary>
    public Result Run(Func<Tensor, IReadOnlyDictionary<string, Tensor>, Tensor> model)
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(X, new Shape(XShape), Device);
        x.RequiresGrad = true;
        var ps = new Dictionary<string, Tensor>();
        foreach (var p in parameters)
        {
            var t = Tensor.FromArray(Values[p.Name], new Shape(p.Shape), Device, MemoryCategory.Parameter);
            t.RequiresGrad = true;
            ps[p.Name] = t;
        }
        foreach (var (name, data) in Constants) ps[name] = Tensor.FromArray(data, new Shape(data.Length), Device);
        try
        {
            using var tape = Tape.Begin();
            var y = model(x, ps);
            var r = Tensor.FromArray(Upstream ?? Rand.Uniform(seed + 7919, (int)y.Numel), y.Shape, Device);
            var loss = Ops.Sum(Ops.Mul(y, r));
            long saved = tape.SavedBytes, index = tape.IndexBytes;
            var nodes = tape.Nodes.Select(n => (n.Op, n.IsCompact, n.SavedBytes, n.SavedTensors.Where(t => t is not null).Select(t => t!.Shape).ToArray())).ToList();
            tape.Backward(loss);
            return new Result(y.ToArray(), loss.Item(), x.Grad?.ToArray() ?? new float[x.Numel],
                parameters.ToDictionary(p => p.Name, p => ps[p.Name].Grad?.ToArray() ?? new float[Ref.Numel(p.Shape)]),
                saved, index, tape.Regions.ToList(), nodes);
        }
        finally
        {
            x.ZeroGrad();
            foreach (var t in ps.Values) t.ZeroGrad();
        }
    }

    /// <summary>The parameters of <see cref="Mlp"/> over <paramref name="channels"/> with a hidden width.</summary>
    public static (string Name, int[] Shape)[] MlpParameters(int channels, int hidden) =>
        [("ln.g", [channels]), ("ln.b", [channels]), ("fc1.w", [hidden, channels]), ("fc1.b", [hidden]), ("fc2.w", [channels, hidden])];

    /// <summary>A position-wise region body over the last axis: layer norm, linear, GELU, linear (no bias).</summary>
    public static Tensor Mlp(Tensor x, IReadOnlyDictionary<string, Tensor> p) =>
        Ops.Linear(Ops.Gelu(Ops.Linear(Ops.LayerNorm(x, [x.Shape[^1]], p["ln.g"], p["ln.b"]), p["fc1.w"], p["fc1.b"])), p["fc2.w"]);

    /// <summary>Wraps a region body for a run mode: no region (Plain) or SbpRegion.Run with the mode.</summary>
    public static Tensor Region(RunMode mode, string name, Tensor x, int dim, KeepMask? mask, Func<Tensor, Tensor> body, bool rescale = false) =>
        mode == RunMode.Plain ? body(x) : SbpRegion.Run(name, x, dim, mask, body, new RegionOptions(ToRegionMode(mode), rescale));

    static RegionMode ToRegionMode(RunMode mode) => mode switch
    {
        RunMode.Oracle => RegionMode.Oracle,
        RunMode.SparseCache => RegionMode.SparseCache,
        RunMode.Recompute => RegionMode.Recompute,
        _ => RegionMode.Checkpoint,
    };

    /// <summary>Asserts two results have the same forward and gradients within float tolerance.</summary>
    public static void AssertSameGradients(Result expected, Result actual, string what, double rtol = 2e-4, double atol = 2e-5)
    {
        Assert.That(actual.Output, Is.EqualTo(expected.Output).Within(1e-6), $"{what}: forward output differs");
        Assert.That(actual.Loss, Is.EqualTo(expected.Loss).Within(1e-5 * Math.Max(1, Math.Abs(expected.Loss))), $"{what}: loss differs");
        AssertClose(expected.XGrad, actual.XGrad, $"{what}: input gradient", rtol, atol);
        foreach (var (name, g) in expected.Grads) AssertClose(g, actual.Grads[name], $"{what}: gradient of {name}", rtol, atol);
    }

    public static void AssertClose(float[] expected, float[] actual, string what, double rtol = 2e-4, double atol = 2e-5)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double scale = expected.Length == 0 ? 0 : expected.Max(v => Math.Abs((double)v));
        for (int i = 0; i < expected.Length; i++)
            if (Math.Abs(expected[i] - actual[i]) > atol + rtol * Math.Max(Math.Abs(expected[i]), scale * 1e-2))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} (max |expected| {scale:G4}).");
    }
}
