using Sbp.Autograd;
using Sbp.Backends.Cuda;
using Sbp.OpCases;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>
/// A large-shape op case: <see cref="Build"/> makes the inputs (seeded, the same on every device) and returns the op
/// over them, so that the op alone (forward and backward) can be timed with CUDA events, apart from the uploads.
/// </summary>
public sealed record LargeCase(string Name, Func<CaseInputs, Func<Tensor>> Build, double Rtol = 1e-4, double Atol = 1e-5);

/// <summary>
/// The shapes the op table (<see cref="OpTable"/>, sized for the simulator) never reaches: multi-block reductions,
/// rows of thousands of columns, millions of gathered rows, the real patch embedding. On a GPU each case runs
/// forward and backward on the CPU and on the device and the results are compared as the table's are; the device
/// time is the second run's (the first loads modules and plans), measured with two CUDA events.
/// With --simulate the same cases run at tiny sizes (the simulator runs a few thousand elements a second).
/// </summary>
public static class LargeOps
{
    /// <summary>The cases at full size (<paramref name="full"/>) or at the simulator's size.</summary>
    public static IReadOnlyList<LargeCase> Cases(bool full)
    {
        int S(int real, int simulated) => full ? real : simulated;
        int rows = S(20_000, 6), wideRows = S(64, 2), gathered = S(1_000_000, 50), table = S(100_000, 10);
        int[] softmax = [S(10_000, 20), S(1000, 50)], column = [S(200_000, 600), S(96, 8)], windows = full ? [8, 8, 7, 8, 7, 96] : [2, 2, 3, 2, 3, 4];
        int[] clip = full ? [1, 3, 16, 224, 224] : [1, 3, 4, 16, 16];
        int channels = S(96, 8);
        int total = S(50_000_000, 5000);
        return
        [
            new($"softmax {Dims(softmax)}", c => Op(c.F(softmax, -3f, 3f), x => Ops.Softmax(x))),
            LayerNorm(rows, 768, "", full ? 5e-3 : 1e-4),
            LayerNorm(wideRows, 6112, " (the in-kernel limit of the weight and bias partials)", 1e-4),
            LayerNorm(wideRows, 6113, " (one column past it: column sums)", 1e-4),
            // A column of 200k floats summed in two orders differs by ~1e-2 (the sums are ~260).
            new($"column sum {Dims(column)}", c => Op(c.F(column), x => Ops.Sum(x, [0])), 1e-4, full ? 0.1 : 1e-5),
            // 50M floats summed in two orders differ by ~0.1-1 (the sum is ~4000); a lost block of 256 would be off by ~10.
            new($"sum of {total:N0} elements", c => Op(c.F([total]), x => Ops.Sum(x)), 1e-5, full ? 2 : 1e-4),
            new($"permute 6-D {Dims(windows)} (Swin window partition)", c => Op(c.F(windows), x => Ops.Permute(x, 1, 3, 0, 2, 4, 5)), 0, 0),
            new($"gather (index_select) {gathered:N0} rows of 64 from {table:N0}", c =>
            {
                var source = c.F([table, 64]);
                var index = c.I([gathered], 0, table);
                return () => Ops.IndexSelect(source, 0, index);
            }, 1e-5, 1e-5),
            new($"scatter (index_add) {gathered:N0} rows of 64 into {table:N0}", c =>
            {
                var x = c.F([table, 64]);
                var index = c.I([gathered], 0, table);
                var source = c.F([gathered, 64]);
                return () => Ops.IndexAdd(x, 0, index, source);
            }, 1e-5, 1e-5),
            // The weight and bias gradients sum over 25k positions (~80): a few 1e-3 between algorithms.
            new($"patch embedding conv3d {Dims(clip)} -> {channels} channels, kernel = stride 2x4x4", c =>
            {
                var x = c.F(clip);
                var weight = c.F([channels, 3, 2, 4, 4]);
                var bias = c.F([channels]);
                return () => Ops.Conv3d(x, weight, bias, [2, 4, 4]);
            }, 1e-4, full ? 1e-2 : 1e-4),
        ];
    }

    static LargeCase LayerNorm(int rows, int cols, string note, double atol) =>
        new($"layer norm {rows}x{cols}{note}", c =>
        {
            var x = c.F([rows, cols]);
            var weight = c.F([cols]);
            var bias = c.F([cols]);
            return () => Ops.LayerNorm(x, [cols], weight, bias);
        }, 1e-4, atol);

    static Func<Tensor> Op(Tensor x, Func<Tensor, Tensor> op) => () => op(x);

    static string Dims(int[] shape) => string.Join('x', shape);

    /// <summary>The case on the CPU and on <paramref name="device"/>, compared; the result's Ms is the device's event time.</summary>
    public static OpResult Compare(LargeCase c, Device device, Device cpu)
    {
        var expected = Run(c, cpu).Results;
        var (actual, ms) = Run(c, device);
        return OpComparison.Compare(new OpCase(c.Name, null, null, c.Rtol, c.Atol), expected, actual, ms);
    }

    /// <summary>y and every leaf's gradient for the cotangent <see cref="Weights"/>; on a CUDA device, the milliseconds of the timed pass.</summary>
    static (IReadOnlyList<(string What, float[] Values)> Results, double Ms) Run(LargeCase c, Device device)
    {
        using var scope = TensorScope.Begin();
        var inputs = new CaseInputs(device);
        var op = c.Build(inputs);
        Tensor? weights = null;
        Tensor y = null!;
        void Pass()
        {
            foreach (var (_, leaf) in inputs.Leaves) leaf.ZeroGrad();
            using var tape = Tape.Begin();
            y = op();
            weights ??= Tensor.FromArray(Weights(y.Numel), y.Shape, device);
            tape.Backward(y, weights);
        }
        double ms = double.NaN;
        Pass();
        if (device.Backend is CudaBackend cuda) ms = cuda.TimeMilliseconds(Pass);
        var results = new List<(string, float[])> { ("y", y.ToArray()) };
        foreach (var (name, leaf) in inputs.Leaves) results.Add((name, leaf.Grad?.ToArray() ?? []));
        return (results, ms);
    }

    /// <summary>The output's gradient: |w| in [0.5, 1.5) with random signs, the same on every device.</summary>
    static float[] Weights(long n)
    {
        var r = new Random(7);
        var w = new float[checked((int)n)];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(0.5 + r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1);
        return w;
    }
}
