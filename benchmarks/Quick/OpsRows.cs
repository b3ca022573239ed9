using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// Elementwise, softmax, layer norm and reduction kernels at Video Swin sizes, all threads:
/// milliseconds, with GB/s of the tensors read and written in the note.
/// </summary>
public sealed class OpsRows : IQuickRowProducer
{
    public string Name => "ops";

    public IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes)
    {
        var device = Device.CreateCpu("bench-ops");
        var cpu = CpuBackend.Instance;
        var rows = new List<QuickRow>();
        void Row(string name, double bytes, Action body)
        {
            double sec = Timing.Best(body, options.MinSecondsPerCase / 2);
            rows.Add(new QuickRow("ops", name, sec * 1e3, "ms", Note: $"{bytes / sec / 1e9:F1} GB/s, {options.AllThreads} threads"));
        }

        using (var x = Fill(new Shape(25088, 384), device, 1))
        using (var g = Fill(new Shape(25088, 384), device, 2))
        using (var y = Tensor.Empty(x.Shape, device))
        {
            double b = 4.0 * x.Numel;
            Row("gelu forward [25088,384]", 2 * b, () => cpu.Unary(UnaryOp.Gelu, x, y));
            Row("gelu backward [25088,384]", 3 * b, () => cpu.ActivationBackward(UnaryOp.Gelu, x, g, y));
            Row("add [25088,384]", 3 * b, () => cpu.Binary(BinaryOp.Add, x, g, y));
        }
        using (var x = Fill(new Shape(96 * 392, 392), device, 3))
        using (var g = Fill(x.Shape, device, 4))
        using (var y = Tensor.Empty(x.Shape, device))
        using (var dx = Tensor.Empty(x.Shape, device))
        {
            double b = 4.0 * x.Numel;
            Row("softmax forward [37632,392]", 2 * b, () => cpu.Softmax(x, y, 1, log: false));
            Row("softmax backward [37632,392]", 3 * b, () => cpu.SoftmaxBackward(y, g, dx, 1, log: false));
        }
        using (var x = Fill(new Shape(25088, 96), device, 5))
        using (var g = Fill(x.Shape, device, 6))
        using (var w = Fill(new Shape(96), device, 7))
        using (var bias = Fill(new Shape(96), device, 8))
        using (var y = Tensor.Empty(x.Shape, device))
        using (var dx = Tensor.Empty(x.Shape, device))
        using (var dw = Tensor.Empty(w.Shape, device))
        using (var db = Tensor.Empty(w.Shape, device))
        using (var mean = Tensor.Empty(new Shape(25088), device))
        using (var rstd = Tensor.Empty(new Shape(25088), device))
        using (var sum = Tensor.Empty(new Shape(1, 96), device))
        {
            double b = 4.0 * x.Numel;
            Row("layer_norm forward [25088,96]", 2 * b, () => cpu.LayerNormForward(x, w, bias, 1e-5f, y, mean, rstd));
            Row("layer_norm backward [25088,96]", 4 * b, () => cpu.LayerNormBackward(g, x, w, mean, rstd, dx, dw, db));
            Row("sum over rows [25088,96] -> [1,96]", b, () => cpu.ReduceSum(x, sum));
        }
        return rows;
    }

    static Tensor Fill(Shape shape, Device device, int seed)
    {
        var r = new Random(seed);
        var data = new float[shape.Numel];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(r.NextDouble() * 2 - 1);
        return Tensor.FromArray(data, shape, device);
    }
}
