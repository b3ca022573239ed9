using System.Globalization;

namespace Sbp.KernelProfile;

/// <summary>One modeled item of the timeline: a kernel launch or a library call.</summary>
public sealed record ModeledItem(string Name, string Phase, string Op, double Seconds, double RooflineSeconds, double SectorsPerUsefulByte);

/// <summary>A modeled step: every item, and the totals.</summary>
public sealed record ModeledStep(IReadOnlyList<ModeledItem> Items, int HostSyncs, int Samples)
{
    public double Seconds => Items.Sum(i => i.Seconds);
    public double PhaseSeconds(string phase) => Items.Where(i => i.Phase == phase).Sum(i => i.Seconds);
}

/// <summary>
/// The modeled GPU time of a recorded step. A kernel's time is the larger of its DRAM traffic (the 32-byte sectors it
/// touches) over the bandwidth it can reach and its warp instructions over the issue rate it can reach, plus the launch
/// gap; a grid with fewer blocks than SMs reaches that fraction of both, and fewer than 16 resident warps per SM reach
/// that fraction of the bandwidth (latency not hidden). A kernel's own roofline is its useful bytes at full bandwidth or
/// its instructions at the full issue rate, whichever is longer; the fraction reported is roofline / modeled (launch gap
/// excluded). GEMMs and convolutions (cuBLAS / cuDNN): FLOPs at <see cref="GpuSpec.LibraryEfficiency"/> of the FP32 (or
/// TF32) peak times the wave efficiency of 128 x 128 output tiles (split along K when there are fewer tiles than SMs),
/// or their bytes at full bandwidth if longer.
/// </summary>
public static class StepTimeline
{
    public static ModeledStep Model(TimelineRecorder recorder, GpuSpec gpu, LaunchSampler sampler) =>
        new(ModelItems(recorder.Launches, recorder.Calls, gpu, sampler), recorder.HostSyncs, sampler.Simulated);

    /// <summary>The modeled launches, then the modeled calls.</summary>
    public static List<ModeledItem> ModelItems(IEnumerable<RecordedLaunch> launches, IEnumerable<RecordedCall> calls, GpuSpec gpu, LaunchSampler sampler)
    {
        var items = new List<ModeledItem>();
        double launch = gpu.LaunchMicroseconds * 1e-6;
        foreach (var l in launches)
        {
            var cost = sampler.Cost(l);
            long warpsPerBlock = (l.Block + 31) / 32;
            double activeSms = Math.Min(l.Grid, gpu.Sms);
            double smFraction = activeSms / gpu.Sms;
            double warpsPerSm = Math.Min(64.0, l.Grid * (double)warpsPerBlock / activeSms);
            double hide = Math.Min(1.0, warpsPerSm / GpuSpec.WarpsToHideLatency);
            double memory = cost.SectorBytes / (gpu.HbmBytesPerSecond * smFraction * hide);
            double issue = cost.WarpInstructions / (gpu.WarpIssuesPerSecond * smFraction * Math.Min(1.0, warpsPerSm / 4));
            double roofline = Math.Max(cost.UsefulBytes / gpu.HbmBytesPerSecond, cost.WarpInstructions / gpu.WarpIssuesPerSecond);
            items.Add(new ModeledItem(l.Entry, l.Phase, l.Op, Math.Max(memory, issue) + launch, roofline,
                cost.UsefulBytes == 0 ? 1 : cost.SectorBytes / cost.UsefulBytes));
        }
        foreach (var c in calls)
        {
            double bytes = c.Bytes / gpu.HbmBytesPerSecond;
            double seconds = bytes, roofline = bytes;
            if (c.Flops > 0)
            {
                double peak = c.Half ? gpu.Bf16Flops : c.Tf32 ? gpu.Tf32Flops : gpu.Fp32Flops;
                // Few output tiles over a long K: the libraries split K across CTAs (split-K), at least 512 of K each.
                long units = c.Tiles * Math.Clamp(gpu.Sms / Math.Max(c.Tiles, 1), 1, Math.Max(1, c.K / 512));
                double waves = Math.Ceiling((double)units / gpu.Sms);
                double waveEfficiency = units / (waves * gpu.Sms);
                seconds = Math.Max(c.Flops / (peak * gpu.LibraryEfficiency * waveEfficiency), bytes);
                roofline = Math.Max(c.Flops / peak, bytes);
            }
            items.Add(new ModeledItem(c.Function, c.Phase, c.Op, seconds + launch, roofline, 1));
        }
        return items;
    }

    /// <summary>The step's table: phases, then kernels and library calls by modeled time, with each one's roofline fraction.</summary>
    public static void Write(ModeledStep step, GpuSpec gpu, string title, TextWriter o)
    {
        var c = CultureInfo.InvariantCulture;
        o.WriteLine($"Modeled {gpu.Name} timeline of one training step: {title}");
        o.WriteLine($"  (modeled, not measured: each distinct kernel launch was run once on the PTX simulator at a reduced shape of at most " +
                    $"{LaunchSampler.SampleElements} elements ({step.Samples} samples) and its counts scaled by its work; cuBLAS / cuDNN calls from their shapes)");
        o.WriteLine(string.Create(c, $"  {"phase",-12}{"items",8}{"modeled ms",14}"));
        foreach (var phase in step.Items.Select(i => i.Phase).Distinct())
            o.WriteLine(string.Create(c, $"  {phase,-12}{step.Items.Count(i => i.Phase == phase),8}{step.PhaseSeconds(phase) * 1e3,14:F3}"));
        o.WriteLine(string.Create(c, $"  {"step",-12}{step.Items.Count,8}{step.Seconds * 1e3,14:F3}   host syncs in the step: {step.HostSyncs}"));
        o.WriteLine();
        o.WriteLine(string.Create(c, $"  {"kernel or call",-40}{"count",7}{"modeled ms",12}{"share",8}{"of roofline",13}{"sectors/useful",16}"));
        foreach (var g in step.Items.GroupBy(i => i.Name).OrderByDescending(g => g.Sum(i => i.Seconds)))
        {
            double seconds = g.Sum(i => i.Seconds), launches = g.Count() * gpu.LaunchMicroseconds * 1e-6;
            double fraction = g.Sum(i => i.RooflineSeconds) / Math.Max(seconds - launches, 1e-12);
            double sectors = g.Average(i => i.SectorsPerUsefulByte);
            o.WriteLine(string.Create(c, $"  {g.Key,-40}{g.Count(),7}{seconds * 1e3,12:F3}{seconds / step.Seconds,8:P1}{Math.Min(fraction, 1),13:P0}{sectors,16:F2}"));
        }
    }
}
