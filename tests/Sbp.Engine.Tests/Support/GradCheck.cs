using System.Globalization;
using System.Text;
using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Support;

/// <summary>One input of a gradient check: host values, a shape, and whether it gets a gradient.</summary>
public sealed record GradInput(float[] Data, int[] Shape, bool RequiresGrad = true)
{
    /// <summary>The same values as an input that does not require grad (its Grad must stay null).</summary>
    public GradInput Constant() => this with { RequiresGrad = false };

    public static GradInput Of(float[] data, params int[] shape) => new(data, shape);
    public static GradInput Uniform(int seed, params int[] shape) => new(Rand.Uniform(seed, Ref.Numel(shape)), shape);
    public static GradInput Range(int seed, float lo, float hi, params int[] shape) => new(Rand.Uniform(seed, Ref.Numel(shape), lo, hi), shape);
    public static GradInput Positive(int seed, params int[] shape) => new(Rand.Positive(seed, Ref.Numel(shape)), shape);
    public static GradInput AwayFromZero(int seed, params int[] shape) => new(Rand.AwayFromZero(seed, Ref.Numel(shape)), shape);
    public static GradInput Distinct(int seed, params int[] shape) => new(Rand.Distinct(seed, Ref.Numel(shape)), shape);

    public override string ToString() => $"{Ref.Format(Shape)}{(RequiresGrad ? "" : " (constant)")}";
}

/// <summary>
/// Step and tolerances of a gradient check. The defaults suit float32 forwards on inputs of order 1:
/// the central difference's truncation error is about eps^2/6 * |f'''| (2e-5 * |f'''|), and float32
/// rounding of the outputs adds roughly 1e-7 * (outputs the element touches) / (2 eps) to the loss
/// slope, both far below atol + rtol * |g|; a wrong factor (x2, x0.5), a wrong sign, a missed
/// broadcast sum or a transposed operand is off by tens of percent and fails.
/// </summary>
/// <param name="Eps">Central-difference step, applied in float32 (the step actually taken is used as the divisor).</param>
/// <param name="Atol">Absolute tolerance: |analytic - numeric| &lt;= Atol + Rtol * |numeric|.</param>
/// <param name="Rtol">Relative tolerance.</param>
/// <param name="Seed">Seed of the random cotangent R in loss = sum(f(x) * R).</param>
public sealed record GradCheckOptions(double Eps = 3e-2, double Atol = 3e-4, double Rtol = 1e-3, int Seed = 9001)
{
    public static GradCheckOptions Default { get; } = new();
}

/// <summary>
/// Finite-difference gradient check of an op (or a composition of ops).
///
/// With R a fixed random tensor of the output's shape (|R| in [0.5, 1.5), random signs) and
/// loss = sum(f(x) * R):
/// (a) the analytic gradient: leaves with RequiresGrad, the forward under a <see cref="Tape"/>,
///     loss = Ops.Sum(Ops.Mul(f(x), R)), Backward, each input's Grad;
/// (b) the numeric gradient of every element of every input that requires grad, by central
///     differences: f re-run under <see cref="Tape.NoGrad"/> at x ± eps, the loss accumulated on
///     the host in double;
/// (c) |analytic - numeric| &lt;= atol + rtol * |numeric| per element.
///
/// Each check runs on its own CPU device; when it is done, every tensor it made has been disposed
/// and the device's pool must be empty (nothing leaked, not even a gradient or a saved tensor).
/// Inputs that do not require grad must end with a null Grad.
///
/// The function may create other tensors it needs (indices, say) on the inputs' device,
/// <c>xs[0].Device</c>; the check's scope disposes them.
/// </summary>
public static class GradCheck
{
    const int MaxReported = 6;

    public static void Check(string op, Func<Tensor[], Tensor> f, params GradInput[] inputs) =>
        Check(op, f, GradCheckOptions.Default, inputs);

    public static void Check(string op, Func<Tensor[], Tensor> f, GradCheckOptions options, params GradInput[] inputs)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(options);
        if (inputs.Length == 0) throw new ArgumentException("GradCheck: no inputs.", nameof(inputs));
        if (!inputs.Any(i => i.RequiresGrad)) throw new ArgumentException("GradCheck: no input requires grad.", nameof(inputs));
        foreach (var i in inputs)
            if (i.Data.Length != Ref.Numel(i.Shape))
                throw new ArgumentException($"GradCheck {op}: {i.Data.Length} values for shape {Ref.Format(i.Shape)}.", nameof(inputs));

        var device = Device.CreateCpu($"gradcheck {op}");
        var (analytic, r) = Analytic(op, f, inputs, device, options.Seed);

        var failures = new StringBuilder();
        int failed = 0, checkedCount = 0;
        double worst = 0;   // the largest |analytic - numeric| / tolerance: how much headroom the check had
        var data = inputs.Select(i => (float[])i.Data.Clone()).ToArray();
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!inputs[i].RequiresGrad) continue;
            var x = data[i];
            for (int e = 0; e < x.Length; e++)
            {
                double numeric = Derivative(x, e, options.Eps, () => Loss(f, data, inputs, r, device));
                double got = analytic[i]![e];
                double tolerance = options.Atol + options.Rtol * Math.Abs(numeric);
                checkedCount++;
                worst = Math.Max(worst, Math.Abs(got - numeric) / tolerance);
                if (Math.Abs(got - numeric) <= tolerance) continue;   // also false for NaN
                if (failed++ < MaxReported)
                    failures.AppendLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {op}: input {i} {Ref.Format(inputs[i].Shape)} element {e} {Ref.Format(Ref.Unravel(e, inputs[i].Shape))}: analytic {got:G7} vs numeric {numeric:G7} (|diff| {Math.Abs(got - numeric):G3} > tolerance {tolerance:G3})"));
            }
        }

        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"gradcheck {op}: {checkedCount} elements, worst |analytic - numeric| / tolerance {worst:F3}"));
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0),
            $"{op}: the gradient check left {device.Pool.InUseBytes} bytes in use on its device after disposing everything (a leak).");
        if (failed > 0)
            Assert.Fail($"{op}: {failed} of {checkedCount} gradient elements differ from central differences (eps {options.Eps}, atol {options.Atol}, rtol {options.Rtol}):\n{failures}" +
                        (failed > MaxReported ? $"  ... and {failed - MaxReported} more\n" : ""));
    }

    /// <summary>
    /// d loss / d x[e] by Richardson-extrapolated central differences: with D(h) the central
    /// difference over the step actually taken in float32, (4 D(h/2) - D(h)) / 3 cancels the h^2
    /// truncation term, so the step can stay large enough that float32 rounding of the outputs
    /// (which differs only where x[e] reaches) stays far below the tolerance. <paramref name="loss"/>
    /// reads x as it is when called; x[e] is restored before returning.
    /// </summary>
    public static double Derivative(float[] x, int e, double eps, Func<double> loss)
    {
        double Central(double h)
        {
            float original = x[e];
            float plus = (float)(original + h), minus = (float)(original - h);
            x[e] = plus;
            double lossPlus = loss();
            x[e] = minus;
            double lossMinus = loss();
            x[e] = original;
            return (lossPlus - lossMinus) / ((double)plus - minus);
        }
        return (4 * Central(eps / 2) - Central(eps)) / 3;
    }

    /// <summary>Runs the forward under a tape, backpropagates sum(f(x) * R) and reads the gradients.</summary>
    static (float[]?[] grads, float[] r) Analytic(string op, Func<Tensor[], Tensor> f, GradInput[] inputs, Device device, int seed)
    {
        var grads = new float[]?[inputs.Length];
        float[] r;
        using (TensorScope.Begin())
        {
            var leaves = inputs.Select(i => Leaf(i, device, i.RequiresGrad)).ToArray();
            using (var tape = Tape.Begin())
            {
                var y = f(leaves);
                Assert.That(y.Device, Is.SameAs(device), $"{op}: the output is on device {y.Device}, not on its inputs' device.");
                r = Rand.AwayFromZero(seed, checked((int)y.Numel), 0.5f, 1.5f);
                var weights = Tensor.FromArray(r, y.Shape, device);
                var loss = Ops.Sum(Ops.Mul(y, weights));
                tape.Backward(loss);
            }
            for (int i = 0; i < inputs.Length; i++)
            {
                var g = leaves[i].Grad;
                if (!inputs[i].RequiresGrad)
                {
                    Assert.That(g, Is.Null, $"{op}: input {i} does not require grad but received a gradient.");
                    continue;
                }
                Assert.That(g, Is.Not.Null, $"{op}: input {i} {Ref.Format(inputs[i].Shape)} requires grad but received no gradient.");
                Assert.That(g!.Shape, Is.EqualTo(new Shape(inputs[i].Shape)), $"{op}: gradient of input {i} has the wrong shape.");
                grads[i] = g.ToArray();
            }
        }
        return (grads, r);
    }

    /// <summary>sum(f(x) * R) in double, without recording.</summary>
    static double Loss(Func<Tensor[], Tensor> f, float[][] data, GradInput[] inputs, float[] r, Device device)
    {
        using var scope = TensorScope.Begin();
        using var noGrad = Tape.NoGrad();
        var xs = new Tensor[data.Length];
        for (int i = 0; i < data.Length; i++) xs[i] = Tensor.FromArray(data[i], new Shape(inputs[i].Shape), device);
        var y = f(xs).ToArray();
        double sum = 0;
        for (int k = 0; k < y.Length; k++) sum += (double)y[k] * r[k];
        return sum;
    }

    static Tensor Leaf(GradInput input, Device device, bool requiresGrad)
    {
        var t = Tensor.FromArray(input.Data, new Shape(input.Shape), device);
        t.RequiresGrad = requiresGrad;
        return t;
    }
}
