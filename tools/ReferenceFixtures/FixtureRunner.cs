using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Runs one case: draws the values, computes logits, loss and gradients in float32 (what the file stores), repeats
/// the computation in float64 to bound the float32 rounding, checks a few gradient entries by central differences
/// in float64, and writes the safetensors file.
/// </summary>
internal static class FixtureRunner
{
    /// <summary>
    /// Largest tolerated max|g32 - g64| / max|g64| over the logits and each gradient tensor: the tests compare at
    /// 1e-4 relative, so a stored float32 value must itself be that close to the exact one.
    /// </summary>
    const double Float32Tolerance = 1e-4;

    /// <summary>Tolerated |fd - g64| / max(|g64|, 1e-8) of the central difference against float64 autograd.</summary>
    const double FiniteDifferenceTolerance = 1e-4;

    /// <summary>Central-difference step; small, so that few ReLU kinks lie within it (float64 keeps the rounding at ~1e-9).</summary>
    const double Step = 1e-7;

    public static string Command =>
        "dotnet run --project tools/ReferenceFixtures -c Release -- --out tests/Sbp.Models.Tests/Fixtures/Reference";

    /// <summary>Returns the size of the written file; throws when a check fails.</summary>
    public static long Run(FixtureCase c, string outDir)
    {
        var m = c.Model;
        bool train = m.HasBatchNorm && c.BnTrain;
        Console.WriteLine($"== {c.Name} ({m.Family}{(m.HasBatchNorm ? train ? ", BN train" : ", BN eval" : "")}, seed {c.Seed})");

        manual_seed(c.Seed);
        var drawn = new ParamStore();
        m.Declare(drawn);
        drawn.Randomize();
        var input = randn(m.InputShape, ScalarType.Float32);
        var target = randint(0, m.NumClasses, [m.InputShape[0]], ScalarType.Int64);
        m.SelfCheck(drawn);

        // Float32: the values the fixture stores. The forward may update BN running stats of `work` (train mode);
        // the file keeps `drawn`, the state from before the forward.
        var work = drawn.Copy(ScalarType.Float32, withGrad: true);
        var x = input.clone().requires_grad_(true);
        var logits = m.Forward(work, x, train);
        var loss = F.cross_entropy(logits, target);
        loss.backward();

        var work64 = drawn.Copy(ScalarType.Float64, withGrad: true);
        var x64 = input.to_type(ScalarType.Float64).requires_grad_(true);
        var logits64 = m.Forward(work64, x64, train);
        var loss64 = F.cross_entropy(logits64, target);
        loss64.backward();

        double sumsq = logits.square().sum().item<float>();
        Console.WriteLine(Invariant($"  logits {Shape(logits)} sum of squares {sumsq:R}, loss {loss.item<float>():R} (float64: {loss64.item<double>():R})"));

        CheckFloat32(c.Name, work, work64, logits, logits64, x, x64);
        CheckFiniteDifferences(c, drawn, input, target, train, work, work64, x, x64);

        var w = new SafetensorsWriter();
        w.Metadata("model", m.Family);
        w.Metadata("config", m.Config.ToJsonString());
        if (m.HasBatchNorm) w.Metadata("bn_mode", train ? "train" : "eval");
        w.Metadata("source", m.Source);
        w.Metadata("generator", Command);
        foreach (var e in drawn.Entries) w.Add(e.Name, e.Value);
        w.Add("input", input);
        w.Add("target", target);
        w.Add("logits", logits);
        w.Add("loss", loss.reshape(1));
        foreach (var e in work.Entries.Where(e => e.IsParameter)) w.Add("grad." + e.Name, Grad(e));
        w.Add("grad.input", x.grad ?? throw new InvalidOperationException("no gradient for the input"));

        Directory.CreateDirectory(outDir);
        var path = Path.Combine(outDir, c.Name + ".safetensors");
        long size = w.Save(path);
        int count = SafetensorsWriter.Verify(path);
        Console.WriteLine($"  wrote {path}: {count} tensors, {size} bytes (config {m.Config.ToJsonString()})");
        return size;
    }

    static Tensor Grad(StateEntry e) => e.Value.grad ?? throw new InvalidOperationException($"no gradient for {e.Name}");

    /// <summary>float32 against float64, tensor by tensor: how much the stored values carry float32 rounding.</summary>
    static void CheckFloat32(string name, ParamStore work, ParamStore work64, Tensor logits, Tensor logits64, Tensor x, Tensor x64)
    {
        var pairs = new List<(string, Tensor, Tensor)> { ("logits", logits, logits64), ("grad.input", x.grad!, x64.grad!) };
        int zero = 0;
        for (int i = 0; i < work.Entries.Count; i++)
        {
            var e = work.Entries[i];
            if (!e.IsParameter) continue;
            var g = Grad(e);
            pairs.Add(("grad." + e.Name, g, Grad(work64.Entries[i])));
            if (g.abs().max().item<float>() == 0) zero++;
        }
        string worst = "";
        double worstErr = 0;
        foreach (var (n, a, b) in pairs)
        {
            double scale = b.abs().max().item<double>();
            double err = (a.to_type(ScalarType.Float64) - b).abs().max().item<double>() / Math.Max(scale, 1e-30);
            if (!(err <= worstErr)) { worstErr = err; worst = n; }   // NaN counts as worst
        }
        Console.WriteLine(Invariant(
            $"  float32 vs float64: worst max|d|/max|ref| = {worstErr:E2} ({worst}); {pairs.Count - 2} parameter gradients, {zero} identically zero"));
        if (!(worstErr <= Float32Tolerance))
            throw new InvalidOperationException($"{name}: float32 result differs from float64 by {worstErr:E2} in {worst}");
    }

    /// <summary>
    /// Central differences in float64 on the largest-gradient element of the input and of each probe parameter,
    /// each evaluation from a fresh copy of the pre-forward state.
    /// </summary>
    static void CheckFiniteDifferences(FixtureCase c, ParamStore drawn, Tensor input, Tensor target, bool train,
        ParamStore work, ParamStore work64, Tensor x, Tensor x64)
    {
        var probes = c.Model.ProbeParameters.Select(n => (Name: n, Index: IndexOf(work64, n))).ToList();
        probes.Add(("input", -1));
        foreach (var (name, index) in probes)
        {
            var g64 = index < 0 ? x64.grad! : Grad(work64.Entries[index]);
            var g32 = index < 0 ? x.grad! : Grad(work.Entries[index]);
            long at = g64.abs().flatten().argmax().item<long>();
            double exact = g64.flatten()[at].item<double>(), stored = g32.flatten()[at].item<float>();
            double plus = Loss(c, drawn, input, target, train, index, at, Step);
            double minus = Loss(c, drawn, input, target, train, index, at, -Step);
            double fd = (plus - minus) / (2 * Step);
            double err = Math.Abs(fd - exact) / Math.Max(Math.Abs(exact), 1e-8);
            Console.WriteLine(Invariant($"  d loss / d {name}[{Unflatten(g64.shape, at)}]: central difference {fd:E6}, ")
                + Invariant($"autograd float64 {exact:E6}, stored float32 {stored:E6} (rel {err:E1})"));
            bool storedClose = Math.Abs(stored - exact) <= Float32Tolerance * Math.Max(Math.Abs(exact), 1e-6);
            if (!(err <= FiniteDifferenceTolerance && storedClose))
                throw new InvalidOperationException($"{c.Name}: finite difference disagrees for {name}");
        }
    }

    static int IndexOf(ParamStore p, string name)
    {
        for (int i = 0; i < p.Entries.Count; i++)
            if (p.Entries[i].Name == name) return i;
        throw new KeyNotFoundException($"probe parameter '{name}' is not in the state dict");
    }

    /// <summary>The float64 loss with one element (of entry <paramref name="index"/>, or of the input when -1) moved by <paramref name="delta"/>.</summary>
    static double Loss(FixtureCase c, ParamStore drawn, Tensor input, Tensor target, bool train, int index, long at, double delta)
    {
        using var _ = no_grad();
        var p = drawn.Copy(ScalarType.Float64, withGrad: false);
        var x = input.to_type(ScalarType.Float64, copy: true);
        var t = index < 0 ? x : p.Entries[index].Value;
        t.view(-1).narrow(0, at, 1).add_(delta);
        return F.cross_entropy(c.Model.Forward(p, x, train), target).item<double>();
    }

    static string Unflatten(long[] shape, long flat)
    {
        var idx = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = flat % shape[d]; flat /= shape[d]; }
        return string.Join(",", idx);
    }

    static string Shape(Tensor t) => "[" + string.Join(",", t.shape) + "]";

    static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
