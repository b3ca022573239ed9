using Sbp.Models.Architectures;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>A seeded batch for a model: clips uniform in [-1, 1) and random class labels, on the device (the benchmark and the profile).</summary>
internal static class RandomBatch
{
    public static (Tensor Input, Tensor Target) For(VideoModel model, int batch, Device device)
    {
        int[] shape = [batch, .. model.SampleShape];
        var r = new Random(5);
        var x = new float[shape.Aggregate(1, (p, d) => checked(p * d))];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(2 * r.NextDouble() - 1);
        var labels = Enumerable.Range(0, batch).Select(_ => r.Next(model.NumClasses)).ToArray();
        return (Tensor.FromArray(x, new Shape(shape), device), Tensor.FromArray(labels, new Shape(labels.Length), device));
    }
}
