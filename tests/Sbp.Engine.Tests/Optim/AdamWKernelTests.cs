using Sbp.Backends;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Optim;

/// <summary>
/// The CPU AdamW update (8 lanes at a time with a scalar tail, over parallel chunks) against the formula written out
/// per element in double-free float arithmetic: bit for bit, at sizes that leave every kind of tail.
/// </summary>
public class AdamWKernelTests
{
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(8)]
    [TestCase(9)]
    [TestCase(1_000_003)]
    public void The_vectorized_update_is_the_per_element_formula_bit_for_bit(int n)
    {
        var spec = new AdamWUpdateSpec(3e-4f, 0.9f, 0.999f, 1e-8f, 0.05f, 7);
        var p = Rand.Uniform(11, n);
        var g = Rand.Uniform(12, n);
        var m = Rand.Uniform(13, n, -0.1f, 0.1f);
        var v = Rand.Uniform(14, n, 0f, 0.01f);
        var device = Device.CreateCpu("adamw kernel");
        using var pt = Tensor.FromArray(p, new Shape(n), device);
        using var gt = Tensor.FromArray(g, new Shape(n), device);
        using var mt = Tensor.FromArray(m, new Shape(n), device);
        using var vt = Tensor.FromArray(v, new Shape(n), device);
        device.Backend.AdamWUpdate(spec, pt, gt, mt, vt);

        float decay = spec.DecayFactor, b1 = spec.Beta1, b2 = spec.Beta2, eps = spec.Eps, step = spec.StepSize, bc2 = spec.BiasCorrection2Sqrt;
        for (int i = 0; i < n; i++)
        {
            float pi = p[i] * decay;
            m[i] = m[i] + (1f - b1) * (g[i] - m[i]);
            v[i] = b2 * v[i] + (1f - b2) * g[i] * g[i];
            p[i] = pi - step * (m[i] / (MathF.Sqrt(v[i]) / bc2 + eps));
        }
        Assert.Multiple(() =>
        {
            Assert.That(pt.ToArray(), Is.EqualTo(p), "param");
            Assert.That(mt.ToArray(), Is.EqualTo(m), "exp_avg");
            Assert.That(vt.ToArray(), Is.EqualTo(v), "exp_avg_sq");
        });
    }
}
