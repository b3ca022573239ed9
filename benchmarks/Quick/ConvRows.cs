using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Quick;

/// <summary>conv3d forward and both backward passes (milliseconds; GFLOP/s of the equivalent direct convolution in the note), on all threads.</summary>
public sealed class ConvRows : IQuickRowProducer
{
    public string Name => "conv3d";

    static readonly (string Name, ConvSpec Spec)[] Cases =
    [
        ("3x3x3 pad 1, [2,32,8,28,28] -> 64",
            new ConvSpec(2, 32, 64, 1, new Dim3(8, 28, 28), Dim3.All(3), Dim3.All(1), Dim3.All(1), Dim3.All(1))),
        ("stem 3x3x3 pad 1, [16,3,16,32,32] -> 16 (swin-micro-stem)",
            new ConvSpec(16, 3, 16, 1, new Dim3(16, 32, 32), Dim3.All(3), Dim3.All(1), Dim3.All(1), Dim3.All(1))),
        ("patch embed 2x4x4 stride 2x4x4, [1,3,16,224,224] -> 96",
            new ConvSpec(1, 3, 96, 1, new Dim3(16, 224, 224), new Dim3(2, 4, 4), new Dim3(2, 4, 4), Dim3.All(0), Dim3.All(1))),
        ("patch embed 2x4x4 stride 2x4x4, [16,16,16,32,32] -> 24 (after swin-micro-stem's stem)",
            new ConvSpec(16, 16, 24, 1, new Dim3(16, 32, 32), new Dim3(2, 4, 4), new Dim3(2, 4, 4), Dim3.All(0), Dim3.All(1))),
        ("depthwise 3x3x3 pad 1, [2,96,8,28,28]",
            new ConvSpec(2, 96, 96, 96, new Dim3(8, 28, 28), Dim3.All(3), Dim3.All(1), Dim3.All(1), Dim3.All(1))),
    ];

    public IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes)
    {
        var device = Device.CreateCpu("bench-conv");
        var cpu = CpuBackend.Instance;
        var rows = new List<QuickRow>();
        foreach (var (name, s) in Cases)
        {
            var o = s.Output;
            using var x = Fill(new Shape(s.Batch, s.InChannels, s.Input.T, s.Input.H, s.Input.W), device, 1);
            using var w = Fill(new Shape(s.OutChannels, s.InPerGroup, s.Kernel.T, s.Kernel.H, s.Kernel.W), device, 2);
            using var dy = Fill(new Shape(s.Batch, s.OutChannels, o.T, o.H, o.W), device, 3);
            using var y = Tensor.Empty(dy.Shape, device);
            using var dx = Tensor.Empty(x.Shape, device);
            using var dw = Tensor.Empty(w.Shape, device);
            double flops = 2.0 * s.Batch * s.OutChannels * o.Volume * s.InPerGroup * s.Kernel.Volume;
            foreach (var (pass, body) in new (string, Action)[]
                     {
                         ("forward", () => cpu.ConvForward(s, x, w, y)),
                         ("backward data", () => cpu.ConvBackwardData(s, dy, w, dx)),
                         ("backward filter", () => cpu.ConvBackwardFilter(s, x, dy, dw)),
                     })
            {
                double sec = Timing.Best(body, options.MinSecondsPerCase / 2);
                rows.Add(new QuickRow("conv3d", $"{name}: {pass}", sec * 1e3, "ms",
                    Note: $"{flops / sec / 1e9:F1} GFLOP/s, {options.AllThreads} threads"));
            }
        }
        return rows;
    }

    static Tensor Fill(Shape shape, Device device, int seed)
    {
        var r = new Random(seed);
        var data = new float[shape.Numel];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(r.NextDouble() - 0.5);
        return Tensor.FromArray(data, shape, device);
    }
}
