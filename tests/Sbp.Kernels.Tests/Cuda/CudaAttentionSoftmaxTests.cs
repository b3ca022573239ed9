using Sbp.Backends;
using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// kernels/attention.ptx: attention's bias, mask, softmax and 16-bit copy of P in one pass give the bits of the step-by-step
/// default (AttentionSteps.Softmax: binary adds, softmax_f32, the cast) on the same device, for every bias and mask form.
/// </summary>
public sealed class CudaAttentionSoftmaxTests : CudaTest
{
    const int B = 4, H = 2, N = 5, M = 7;

    static readonly object[] Cases =
    [
        new object?[] { null, null, false, null },
        new object?[] { new[] { H, N, M }, null, false, DType.BFloat16 },      // Swin's relative bias [H, N, M]
        new object?[] { new[] { N, M }, new[] { B, 1, N, M }, false, null },    // a bias per query row, a mask per batch entry
        new object?[] { new[] { 1, H, N, M }, new[] { 2, 1, N, M }, true, DType.Float16 },   // a window mask of 2 planes
        new object?[] { null, new[] { 2, H, N, M }, true, DType.BFloat16 },     // a window mask per head
        new object?[] { null, new[] { H, N, M }, false, null },                 // a mask per head, broadcast over the batch
        new object?[] { new[] { H, 1, M }, null, false, null },                 // a broadcast the kernel does not take: the default runs
    ];

    [TestCaseSource(nameof(Cases))]
    public void FusedSoftmaxIsTheStepsBitForBit(int[]? biasShape, int[]? maskShape, bool window, DType? copy)
    {
        var spec = new AttentionSpec(B, H, N, M, 8, 8, 0.5f, window);
        var scores = Rand.Uniform(1, B * H * N * M, -4f, 4f);
        Tensor? Make(int[]? shape, int seed, float lo) =>
            shape is null ? null : Tensor.FromArray(Rand.Uniform(seed, (int)new Shape(shape).Numel, lo, 1f), new Shape(shape), Gpu);
        using var bias = Make(biasShape, 2, -1f);
        using var mask = Make(maskShape, 3, -30f);

        (float[] P, float[] P16) Run(bool fused)
        {
            using var logits = Tensor.FromArray(scores, spec.Scores, Gpu);
            using var p = Tensor.Full(spec.Scores, float.NaN, Gpu);
            using var p16 = copy is { } t ? Tensor.Empty(spec.Scores, Gpu, t) : null;
            if (fused) Gpu.Backend.AttentionSoftmax(spec, logits, bias, mask, p, p16);
            else AttentionSteps.Softmax(Gpu.Backend, spec, logits, bias, mask, p, p16);
            using var wide = p16?.To(DType.Float32);
            return (p.ToArray(), wide?.ToArray() ?? []);
        }

        var launchesBefore = OnRealGpu ? 0 : SimulatedCuda.Launches(Gpu).GetValueOrDefault("attention_softmax_f32");
        var fused = Run(fused: true);
        var steps = Run(fused: false);
        Assert.That(fused.P, Is.EqualTo(steps.P), "P");
        Assert.That(fused.P16, Is.EqualTo(steps.P16), "the 16-bit copy of P");
        if (!OnRealGpu)
            Assert.That(SimulatedCuda.Launches(Gpu).GetValueOrDefault("attention_softmax_f32") - launchesBefore,
                Is.EqualTo(biasShape is [_, 1, _] ? 0 : 1), "the fused kernel runs where the shapes allow, once");
    }
}
