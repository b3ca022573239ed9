using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>
/// Finite-difference check of a module's parameter gradients (the shared <see cref="GradCheck"/>
/// covers function inputs; a module's parameters live inside it). Same recipe and tolerances:
/// loss = sum(forward(module, x) * R), analytic gradients from one backward, numeric ones by central
/// differences with each parameter element perturbed in place (under NoGrad), compared elementwise.
/// Runs on its own device and requires it to be empty afterwards.
/// </summary>
internal static class ParameterGradCheck
{
    const int MaxReported = 6;

    public static void Check(string what, Func<Device, Module> build, Func<Module, Tensor, Tensor> forward, float[] x, int[] xShape,
        GradCheckOptions? options = null)
    {
        options ??= GradCheckOptions.Default;
        var device = Device.CreateCpu($"parameter gradcheck {what}");
        var failures = new StringBuilder();
        int failed = 0, checkedCount = 0;
        using (var module = build(device))
        {
            float[] r;
            using (TensorScope.Begin())
            {
                var input = Tensor.FromArray(x, new Shape(xShape), device);
                using var tape = Tape.Begin();
                var y = forward(module, input);
                r = Rand.AwayFromZero(options.Seed, checked((int)y.Numel), 0.5f, 1.5f);
                tape.Backward(Ops.Sum(Ops.Mul(y, Tensor.FromArray(r, y.Shape, device))));
            }
            var analytic = new List<(string Name, Tensor P, float[] Grad)>();
            foreach (var (name, p) in module.NamedParameters())
            {
                if (!p.RequiresGrad) continue;
                Assert.That(p.Grad, Is.Not.Null, $"{what}: parameter {name} requires grad but received no gradient.");
                Assert.That(p.Grad!.Shape, Is.EqualTo(p.Shape), $"{what}: gradient of {name} has the wrong shape.");
                analytic.Add((name, p, p.Grad.ToArray()));
            }
            module.ZeroGrad();

            double Loss()
            {
                using var scope = TensorScope.Begin();
                using var noGrad = Tape.NoGrad();
                var y = forward(module, Tensor.FromArray(x, new Shape(xShape), device)).ToArray();
                double sum = 0;
                for (int k = 0; k < y.Length; k++) sum += (double)y[k] * r[k];
                return sum;
            }

            foreach (var (name, p, grad) in analytic)
            {
                var data = p.ToArray();
                for (int e = 0; e < data.Length; e++)
                {
                    float original = data[e];
                    float plus = (float)(original + options.Eps), minus = (float)(original - options.Eps);
                    data[e] = plus;
                    Upload(p, data);
                    double lossPlus = Loss();
                    data[e] = minus;
                    Upload(p, data);
                    double lossMinus = Loss();
                    data[e] = original;
                    Upload(p, data);
                    double numeric = (lossPlus - lossMinus) / ((double)plus - minus);
                    double tolerance = options.Atol + options.Rtol * Math.Abs(numeric);
                    checkedCount++;
                    if (Math.Abs(grad[e] - numeric) <= tolerance) continue;
                    if (failed++ < MaxReported)
                        failures.AppendLine(string.Create(CultureInfo.InvariantCulture,
                            $"  {what}: {name} {p.Shape} element {e}: analytic {grad[e]:G7} vs numeric {numeric:G7} (tolerance {tolerance:G3})"));
                }
            }
        }
        Assert.That(device.Pool.InUseBytes, Is.Zero, $"{what}: {device.Pool.InUseBytes} bytes left in use after disposing the module (a leak).");
        Assert.That(checkedCount, Is.GreaterThan(0), $"{what}: no parameter was checked.");
        if (failed > 0)
            Assert.Fail($"{what}: {failed} of {checkedCount} parameter gradient elements differ from central differences:\n{failures}");
    }

    static void Upload(Tensor p, float[] data) => p.Backend.CopyFromHost(MemoryMarshal.AsBytes(data.AsSpan()), p);
}
