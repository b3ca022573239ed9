using Sbp.Backends.Cpu;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// The SBP pack and unpack: IndexSelect (gather) and IndexAdd (scatter-add) of half the tokens
/// along dim 1 of [B, tokens, C], in GB/s of bytes read plus written, against a plain copy of
/// the same bytes (CpuBackend.Copy of the packed size), on all threads.
/// </summary>
public sealed class GatherRows : IQuickRowProducer
{
    public string Name => "gather";

    public IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes)
    {
        var device = Device.CreateCpu("bench-gather");
        var cpu = CpuBackend.Instance;
        var rows = new List<QuickRow>();
        foreach (var (b, tokens, c) in new[] { (2, 8 * 56 * 56, 96), (2, 8 * 14 * 14, 768), (2, 8 * 7 * 7, 768) })
        {
            int keep = tokens / 2;
            var all = Enumerable.Range(0, tokens).ToArray();
            new Random(7).Shuffle(all);
            var kept = all[..keep].Order().ToArray(); // SBP keeps sorted positions
            using var full = Tensor.Zeros(new Shape(b, tokens, c), device);
            using var packed = Tensor.Zeros(new Shape(b, keep, c), device);
            using var other = Tensor.Zeros(new Shape(b, keep, c), device);
            using var idx = Tensor.FromArray(kept, new Shape(keep), device);
            double bytes = 4.0 * b * keep * c;
            double copy = 2 * bytes / Timing.Best(() => cpu.Copy(packed, other), options.MinSecondsPerCase / 2) / 1e9;
            double gather = 2 * bytes / Timing.Best(() => cpu.IndexSelect(full, 1, idx, packed), options.MinSecondsPerCase / 2) / 1e9;
            double scatter = 3 * bytes / Timing.Best(() => cpu.IndexAdd(full, 1, idx, packed), options.MinSecondsPerCase / 2) / 1e9;
            string shape = $"[{b},{tokens},{c}] keep {keep} sorted";
            rows.Add(new QuickRow("gather", $"index_select {shape}", gather, "GB/s", copy, "copy"));
            rows.Add(new QuickRow("gather", $"index_add {shape}", scatter, "GB/s", copy, "copy"));
        }
        notes.Add($"gather/scatter: {options.AllThreads} threads; GB/s counts bytes read + written (index_add reads dst too); " +
                  "copy = CpuBackend.Copy of the packed tensor.");
        return rows;
    }
}
