using System.Diagnostics;
using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>One full SBP training step on the device against the CPU: the worst differences found.</summary>
public sealed record TrainStepResult(string Model, string Mode, int Batch, bool Passed, double CpuLoss, double DeviceLoss,
    double MaxGradDiff, string? WorstGrad, double MaxWeightDiff, string? WorstWeight, int Regions, double DeviceMs, double CpuMs, string? Error);

/// <summary>
/// A full SBP training step (forward with strided keep-0.5 masks, cross-entropy, backward, one AdamW
/// step) of the same Video Swin, from the same weights and inputs, on the device and on the CPU:
/// the loss, every parameter gradient and every updated weight must agree to float tolerance.
/// </summary>
public static class TrainStepCheck
{
    sealed record Step(double Loss, Dictionary<string, float[]> Grads, Dictionary<string, float[]> Weights, int Regions, double Ms);

    /// <summary>
    /// One step in each place; <paramref name="precision"/> BFloat16 or Float16 runs the forward pass and loss under autocast
    /// on both, with 16-bit tolerances: the GEMMs round their outputs to 16 bits, and the devices' different summation orders
    /// may round an element one 16-bit step apart (2^-8 of it for bfloat16), which later layers carry on.
    /// </summary>
    public static TrainStepResult Run(Device device, Device cpu, string model, int batch, RegionMode mode, DType precision = DType.Float32)
    {
        string name = precision == DType.Float32 ? mode.ToString() : $"{mode}, autocast {precision}";
        double scale = precision == DType.Float32 ? 1 : precision == DType.BFloat16 ? 100 : 20;   // tolerance multiplier
        try
        {
            using var reference = ModelFactory.Create(model, new RandomSource(7), cpu);
            using var onDevice = ModelFactory.Create(model, new RandomSource(7), device);
            onDevice.LoadStateDict(reference.StateDict());
            int[] shape = [batch, .. reference.SampleShape];
            var r = new Random(21);
            var x = new float[shape.Aggregate(1, (p, d) => p * d)];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(2 * r.NextDouble() - 1);
            var labels = Enumerable.Range(0, batch).Select(_ => r.Next(reference.NumClasses)).ToArray();
            var policy = new SbpPolicy(new KeepMaskPolicy(MaskKind.Strided, 0.5, Seed: 42), SbpPlacement.BlockOutput, mode);
            var expected = Run(reference, x, shape, labels, policy, precision);
            var actual = Run(onDevice, x, shape, labels, policy, precision);

            double largest = expected.Grads.Values.SelectMany(g => g).DefaultIfEmpty(0).Max(v => Math.Abs(v));
            var (gradDiff, worstGrad, gradOk) = Worst(expected.Grads, actual.Grads, 1e-3 * scale, 1e-4 * scale * Math.Max(largest, 1e-3));
            var (weightDiff, worstWeight, weightOk) = Worst(expected.Weights, actual.Weights, 1e-4 * scale, 1e-5 * scale);
            bool lossOk = Math.Abs(expected.Loss - actual.Loss) <= 1e-4 * scale * Math.Max(1, Math.Abs(expected.Loss));
            bool passed = lossOk && gradOk && weightOk && actual.Regions == expected.Regions && expected.Regions > 0;
            return new TrainStepResult(model, name, batch, passed, expected.Loss, actual.Loss, gradDiff, worstGrad, weightDiff, worstWeight,
                actual.Regions, actual.Ms, expected.Ms, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException && !StickyError.Is(e))
        {
            return new TrainStepResult(model, name, batch, false, double.NaN, double.NaN, double.NaN, null, double.NaN, null, 0, 0, 0,
                $"{e.GetType().Name}: {e.Message}");
        }
    }

    static Step Run(VideoModel model, float[] x, int[] shape, int[] labels, SbpPolicy policy, DType precision)
    {
        var device = model.Device;
        var watch = Stopwatch.StartNew();
        model.ZeroGrad();
        double loss;
        int regions;
        // eps 1e-4: the first Adam step is lr * g / (|g| + eps); a tiny eps turns float noise in near-zero gradients into full-size steps.
        using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f, eps: 1e-4f, weightDecay: 0.05f);
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            Tensor l;
            using (Autocast.Begin(precision))
                l = Ops.CrossEntropy(model.Forward(Tensor.FromArray(x, new Shape(shape), device), policy, 3), Tensor.FromArray(labels, new Shape(labels.Length), device));
            regions = tape.Regions.Count;
            tape.Backward(l);
            loss = l.Item();
        }
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad?.ToArray() ?? new float[p.Tensor.Numel]);
        optimizer.Step();
        var weights = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        model.ZeroGrad();
        return new Step(loss, grads, weights, regions, watch.Elapsed.TotalMilliseconds);
    }

    static (double MaxDiff, string? Worst, bool Ok) Worst(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual, double rtol, double atol)
    {
        double max = 0, worstExcess = 0;
        string? worst = null;
        bool ok = true;
        foreach (var (name, e) in expected)
        {
            if (!actual.TryGetValue(name, out var a) || a.Length != e.Length) return (double.NaN, $"{name}: missing or a different size on the device", false);
            for (int i = 0; i < e.Length; i++)
            {
                double diff = Math.Abs((double)a[i] - e[i]);
                if (double.IsNaN(diff)) diff = double.PositiveInfinity;
                max = Math.Max(max, diff);
                double excess = diff - (atol + rtol * Math.Abs(e[i]));
                if (excess > 0 && (ok || excess > worstExcess))
                {
                    ok = false;
                    worstExcess = excess;
                    worst = $"{name}[{i}] = {a[i]:G9} on the device, {e[i]:G9} on the CPU";
                }
            }
        }
        return (max, worst, ok);
    }
}
