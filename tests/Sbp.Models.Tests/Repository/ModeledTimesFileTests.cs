using System.Globalization;
using System.Text.RegularExpressions;

namespace Sbp.Models.Tests.Repository;

/// <summary>
/// The GPU kit shows the H100 model's predicted phase times next to its CUDA-event times from a file it ships
/// (kernels/Sbp.GpuKit/modeled-h100-swin-t-b8.txt); those numbers must be the committed timeline's
/// (benchmarks/results/gpu-model/swin-t-b8-16x224.txt, full backprop), so a regenerated timeline cannot leave the kit stale.
/// </summary>
public partial class ModeledTimesFileTests
{
    [GeneratedRegex(@"^\s+(forward|backward|optimizer)\s+\d+\s+([0-9.]+)\s*$")]
    private static partial Regex PhaseRow();

    [Test]
    public void The_kits_modeled_phase_times_are_the_committed_timelines()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Engine.sln"))) root = root.Parent;
        Assert.That(root, Is.Not.Null, "repository root");
        var timeline = new Dictionary<string, double>();
        foreach (var line in File.ReadLines(Path.Combine(root!.FullName, "benchmarks/results/gpu-model/swin-t-b8-16x224.txt")))
        {
            if (line.StartsWith("Modeled", StringComparison.Ordinal) && timeline.Count > 0) break;   // the first (full backprop) table only
            if (PhaseRow().Match(line) is { Success: true } m) timeline[m.Groups[1].Value] = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        }
        var kit = File.ReadLines(Path.Combine(root.FullName, "kernels/Sbp.GpuKit/modeled-h100-swin-t-b8.txt"))
            .Where(l => !l.StartsWith('#') && l.Split(' ') is [("forward" or "backward" or "optimizer"), _])
            .ToDictionary(l => l.Split(' ')[0], l => double.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture));
        Assert.That(timeline.Keys, Is.EquivalentTo(new[] { "forward", "backward", "optimizer" }));
        foreach (var (phase, ms) in timeline)
            Assert.That(kit[phase], Is.EqualTo(ms).Within(0.01), $"{phase}: regenerate kernels/Sbp.GpuKit/modeled-h100-swin-t-b8.txt from the timeline");
    }
}
