using System.Diagnostics;
using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>What the benchmark measures and on what; <see cref="Batch"/> 0: chosen so a full-backprop step takes about <see cref="TargetMs"/>.</summary>
public sealed record BenchOptions(string Model, int Batch, int Frames, int Size, int Warmup, int Steps, double[] KeepRatios, bool Tf32, double TargetMs = 1500, int MaxBatch = 16)
{
    /// <summary>The autocast types of the rows (Float32: none): each runs full backprop and every keep ratio.</summary>
    public DType[] Precisions { get; init; } = [DType.Float32, DType.BFloat16];

    /// <summary>Rows of a complete benchmark.</summary>
    public int RowCount => Precisions.Length * (KeepRatios.Length + 1);

}

/// <summary>
/// One benchmark row: mean and best training step time (forward, backward, AdamW; device synchronized),
/// the device pool's peak in use (parameters, gradients, optimizer state, activations, workspace) and peak
/// reserved (in use plus cached blocks) over the timed steps, and the bytes the tape held for backward after the forward.
/// </summary>
public sealed record BenchRow(string Mode, double Keep, double MeanStepMs, double MinStepMs, long PeakBytes, long SavedBytes, double Loss, string? Error,
    long PeakReservedBytes = 0, string Precision = "fp32");

/// <summary>
/// Training steps of a Video Swin with full backprop and with SBP at the given keep ratios. The pool's cache is emptied
/// before each row, so each row's peaks are its own (not the blocks an earlier row left cached).
/// </summary>
public static class Benchmark
{
    /// <summary>
    /// Runs the rows (full backprop first), handing each to <paramref name="onRow"/> as it is done; returns the options they ran
    /// with (the batch filled in when it was chosen). <paramref name="outOfTime"/>(seconds the last row took) is asked before
    /// each row: true ends the benchmark there. A sticky CUDA error is rethrown (the context can run nothing more).
    /// </summary>
    public static BenchOptions Run(Device device, BenchOptions o, Action<string> log, Func<double, bool> outOfTime, Action<BenchRow> onRow)
    {
        if (o.Batch == 0)
        {
            device.Pool.EmptyCache();
            var probe = Measure(device, o with { Batch = 1, Warmup = 1, Steps = 1 }, null, _ => { });
            int batch = probe.Error is null ? (int)Math.Clamp(Math.Round(o.TargetMs / probe.MeanStepMs), 1, o.MaxBatch) : 1;
            log($"  batch 1 takes {probe.MeanStepMs:0.0} ms per step: batch {batch} for about {o.TargetMs:0} ms (at most {o.MaxBatch})");
            o = o with { Batch = batch };
        }
        double last = 0;
        foreach (var precision in o.Precisions)
            foreach (double? keep in o.KeepRatios.Select(k => (double?)k).Prepend(null))
            {
                if (outOfTime(last)) goto done;
                var watch = Stopwatch.StartNew();
                device.Pool.EmptyCache();
                device.Pool.ResetPeak();
                onRow(Measure(device, o, keep, precision, log));
                last = watch.Elapsed.TotalSeconds;
            }
        done:
        device.Pool.EmptyCache();
        return o;
    }

    static BenchRow Measure(Device device, BenchOptions o, double? keep, Action<string> log) => Measure(device, o, keep, DType.Float32, log);

    /// <summary>One row; <paramref name="precision"/>: the forward pass and loss under autocast in that type (Float32: none).</summary>
    static BenchRow Measure(Device device, BenchOptions o, double? keep, DType precision, Action<string> log)
    {
        string mode = (precision == DType.Float32 ? "" : ModeSpec.PrecisionName(precision) + " ") + (keep is null ? "full backprop" : $"SBP keep {keep:0.##}");
        try
        {
            using var model = ModelFactory.Create(o.Model, new RandomSource(1), device, frames: o.Frames, height: o.Size, width: o.Size);
            var policy = keep is { } k ? new SbpPolicy(new KeepMaskPolicy(MaskKind.Strided, k, Seed: 3), SbpPlacement.BlockOutput, RegionMode.SparseCache) : null;
            using var optimizer = new AdamW(model.NamedParameters(), 1e-4f);
            var (input, target) = RandomBatch.For(model, o.Batch, device);
            using var inputs = input;
            using var targets = target;
            model.Train();

            var times = new List<double>();
            long saved = 0;
            double loss = 0;
            for (int s = 0; s < o.Warmup + o.Steps; s++)
            {
                if (s == o.Warmup) device.Pool.ResetPeak();
                var watch = Stopwatch.StartNew();
                using (var scope = TensorScope.Begin())
                using (var tape = Tape.Begin())
                {
                    Tensor l;
                    using (Autocast.Begin(precision)) l = Ops.CrossEntropy(model.Forward(input, policy, s), target);
                    saved = Math.Max(saved, tape.SavedBytes);
                    tape.Backward(l);
                    loss = l.Item();
                }
                optimizer.Step();
                optimizer.ZeroGrad();
                (device.Backend as Sbp.Backends.Cuda.CudaBackend)?.Synchronize();
                watch.Stop();
                if (s >= o.Warmup) times.Add(watch.Elapsed.TotalMilliseconds);
            }
            var row = new BenchRow(mode, keep ?? 1, times.Average(), times.Min(), device.Pool.PeakInUseBytes, saved, loss, null, device.Pool.PeakReservedBytes,
                ModeSpec.PrecisionName(precision));
            log($"  {mode,-16} step {row.MeanStepMs,9:0.0} ms (best {row.MinStepMs:0.0}), peak {MemoryPool.FormatBytes(row.PeakBytes)} in use, {MemoryPool.FormatBytes(row.PeakReservedBytes)} reserved, saved for backward {MemoryPool.FormatBytes(row.SavedBytes)}");
            return row;
        }
        catch (DeviceOutOfMemoryException e)
        {
            log($"  {mode,-16} out of device memory ({MemoryPool.FormatBytes(e.RequestedBytes)} requested)");
            return new BenchRow(mode, keep ?? 1, double.NaN, double.NaN, device.Pool.PeakInUseBytes, 0, double.NaN, $"out of device memory: {e.Message}",
                Precision: ModeSpec.PrecisionName(precision));
        }
        catch (Exception e) when (e is not OutOfMemoryException && !StickyError.Is(e))
        {
            log($"  {mode,-16} failed: {e.GetType().Name}: {e.Message}");
            return new BenchRow(mode, keep ?? 1, double.NaN, double.NaN, 0, 0, double.NaN, $"{e.GetType().Name}: {e.Message}", Precision: ModeSpec.PrecisionName(precision));
        }
    }
}
