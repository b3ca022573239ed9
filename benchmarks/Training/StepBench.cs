using Sbp.Stochastic;
using System.Diagnostics;
using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Training;

/// <summary>
/// Measures training steps of a model on a fresh, isolated CPU device (its own memory pool, so the
/// peak is exact): warm-up steps, then timed steps of forward, cross-entropy on random labels,
/// backward and AdamW on random inputs. The weights, inputs and labels depend only on the case's
/// seed, so every mode of a case trains the same model on the same data.
/// </summary>
public static class StepBench
{
    /// <summary>Warm-up and timed steps of <paramref name="mode"/>; <paramref name="limitBytes"/> caps the pool (a DeviceOutOfMemoryException escapes).</summary>
    public static StepResult Measure(StepCase c, StepMode mode, int warmup = 1, int steps = 3, long? limitBytes = null)
    {
        var device = Device.CreateCpu($"bench-{c.Model}-{mode.Name}-{Guid.NewGuid():N}");
        device.Pool.LimitBytes = limitBytes;
        bool peakBlocks = Environment.GetEnvironmentVariable("SBP_BENCH_PEAK") == "1";
        device.Pool.CapturePeakBlocks = peakBlocks;
        string? profileKind = Environment.GetEnvironmentVariable("SBP_BENCH_PROFILE");
        bool profile = profileKind is "1" or "shapes";
        try
        {
            using var model = ModelFactory.Create(c.Model, new RandomSource(c.Seed).Split("model"), device, c.Classes, c.Frames, c.Size, c.Size);
            model.Train();
            var policy = mode.PolicyFor(model, c.Seed);
            long paramBytes = model.NamedParameters().Sum(p => p.Tensor.Numel * 4L);
            bool framesFirst = model.FramesFirst;
            var shape = framesFirst ? new Shape(c.Batch, c.Frames, 3, c.Size, c.Size) : new Shape(c.Batch, 3, c.Frames, c.Size, c.Size);
            var rng = new Random(checked((int)c.Seed) * 7919 + 17);
            var data = new float[shape.Numel];
            for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
            // Per-frame labels for the frame detector (logits [B, T, K]), one per clip otherwise.
            var labelShape = framesFirst ? new Shape(c.Batch, c.Frames) : new Shape(c.Batch);
            var labels = new int[labelShape.Numel];
            for (int i = 0; i < labels.Length; i++) labels[i] = rng.Next(c.Classes);
            using var x = Tensor.FromArray(data, shape, device);
            using var y = Tensor.FromArray(labels, labelShape, device);
            using var optimizer = new AdamW(ParamGroup.SplitDecay(model.NamedParameters(), 0.05f), 1e-4f);

            var times = new List<double>();
            var phases = new List<(double Forward, double Backward, double Optimizer)>();
            int nodes = 0;
            OpCost cost = default;
            long saved = 0, index = 0;
            double loss = 0;
            List<RegionBytes> regions = [];
            for (int s = 0; s < warmup + steps; s++)
            {
                if (s == warmup) device.Pool.ResetPeak();
                long t0 = Stopwatch.GetTimestamp(), tForward = 0, tBackward = 0;
                using (TensorScope.Begin())
                using (var tape = Tape.Begin())
                {
                    // SBP_BENCH_PROFILE=1: per-op forward and backward times of the last step, on stderr ("shapes": per op and input shapes).
                    if (profile && s == warmup + steps - 1) { tape.Profile = new OpProfile { ByShape = profileKind == "shapes" }; tape.Profile.Start(); }
                    // The detector already takes [B, T, C, H, W]: x is passed as is.
                    var l = mode.Forward(() => Trainer.Loss(model.Forward(x, policy, s), y));
                    tForward = Stopwatch.GetTimestamp();
                    saved = tape.SavedBytes;
                    nodes = tape.Nodes.Count;
                    index = tape.IndexBytes;
                    if (s == warmup)
                        regions = [.. tape.Regions.Select(g => new RegionBytes(g.Name, g.Mode.ToString(), g.Kept, g.Size, g.SavedBytes, g.FullSavedBytes))];
                    if (s == warmup) cost = FlopCounter.Of(tape);
                    long tb = Stopwatch.GetTimestamp();
                    tape.Backward(l);
                    tBackward = Stopwatch.GetTimestamp() - tb;
                    loss = l.Item();
                    if (tape.Profile is { } p) Console.Error.Write($"  {mode.Name} profile:\n{p.Format()}");
                }
                long to = Stopwatch.GetTimestamp();
                optimizer.Step();
                optimizer.ZeroGrad();
                long end = Stopwatch.GetTimestamp();
                double ms = Stopwatch.GetElapsedTime(t0, end).TotalMilliseconds;
                if (s >= warmup)
                {
                    times.Add(ms);
                    phases.Add((Stopwatch.GetElapsedTime(t0, tForward).TotalMilliseconds, tBackward * 1000.0 / Stopwatch.Frequency,
                        Stopwatch.GetElapsedTime(to, end).TotalMilliseconds));
                }
            }
            if (peakBlocks) PrintPeakBlocks(mode, device.Pool);
            var sorted = times.Order().ToArray();
            return new StepResult(c, mode.Name, mode.Keep, Median(sorted), sorted[0], [.. times], device.Pool.PeakInUseBytes,
                saved, index, paramBytes, loss, regions)
            {
                ForwardMs = Median([.. phases.Select(p => p.Forward).Order()]),
                BackwardMs = Median([.. phases.Select(p => p.Backward).Order()]),
                OptimizerMs = Median([.. phases.Select(p => p.Optimizer).Order()]),
                TapeNodes = nodes,
                Cost = cost,
            };
        }
        finally
        {
            device.Pool.LimitBytes = null;
            device.Pool.EmptyCache();
        }
    }

    /// <summary>True when two steps of <paramref name="mode"/> fit in <paramref name="limitBytes"/> (the second runs with AdamW's state allocated, as every later step does).</summary>
    public static bool Fits(StepCase c, StepMode mode, long limitBytes)
    {
        try
        {
            Measure(c, mode, warmup: 1, steps: 1, limitBytes: limitBytes);
            return true;
        }
        catch (DeviceOutOfMemoryException e)
        {
            if (Environment.GetEnvironmentVariable("SBP_BENCH_VERBOSE") == "1") Console.Error.WriteLine($"  {c} {mode.Name}: {e.Message}");
            return false;
        }
    }

    /// <summary>What was live at the pool's peak, grouped by category and op label (SBP_BENCH_PEAK=1).</summary>
    static void PrintPeakBlocks(StepMode mode, MemoryPool pool)
    {
        var (blocks, op) = pool.PeakBlocks;
        Console.Error.WriteLine($"  {mode.Name}: peak {MemoryPool.FormatBytes(blocks.Sum(b => b.Bytes))} while '{op}' ran; live blocks by category and op:");
        foreach (var g in blocks.GroupBy(b => (b.Category, b.Label)).OrderByDescending(g => g.Sum(b => b.Bytes)).Take(20))
            Console.Error.WriteLine($"    {g.Key.Category,-16} {g.Key.Label,-28} {g.Count(),5} blocks {MemoryPool.FormatBytes(g.Sum(b => b.Bytes))}");
    }

    internal static double Median(double[] sorted) =>
        sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}
