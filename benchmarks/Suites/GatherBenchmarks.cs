using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Sbp.Backends.Cpu;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Suites;

/// <summary>
/// The SBP pack / unpack kernels: IndexSelect (gather) and IndexAdd (scatter-add) of half the
/// tokens of [2, 6272, 96] (Video Swin stage 1 at 8x112x112) against a plain copy of the packed
/// bytes (the baseline); the GB/s column counts bytes read + written.
/// `dotnet run -c Release --project benchmarks -- --filter '*Gather*'`
/// </summary>
[Config(typeof(GatherConfig))]
public class GatherBenchmarks
{
    const int B = 2, Tokens = 8 * 28 * 28, C = 96, Keep = Tokens / 2;
    static readonly double PackedBytes = 4.0 * B * Keep * C;
    Tensor? _full, _packed, _other, _idx;

    public sealed class GatherConfig : ManualConfig
    {
        public GatherConfig()
        {
            AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("short-inproc"));
            AddColumn(new EngineMemoryColumn("GBps", "GB/s", (s, c) =>
            {
                double? ns = s[c]?.ResultStatistics?.Median;
                double moved = c.Descriptor.WorkloadMethod.Name == nameof(IndexAdd) ? 3 * PackedBytes : 2 * PackedBytes;
                return ns is > 0 ? (moved / ns.Value).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "?";
            }));
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var device = Device.CreateCpu("bench-bdn-gather");
        var all = Enumerable.Range(0, Tokens).ToArray();
        new Random(7).Shuffle(all);
        _full = Tensor.Zeros(new Shape(B, Tokens, C), device);
        _packed = Tensor.Zeros(new Shape(B, Keep, C), device);
        _other = Tensor.Zeros(new Shape(B, Keep, C), device);
        _idx = Tensor.FromArray(all[..Keep].Order().ToArray(), new Shape(Keep), device);
    }

    [Benchmark(Baseline = true)]
    public void Copy() => CpuBackend.Instance.Copy(_packed!, _other!);

    [Benchmark]
    public void IndexSelect() => CpuBackend.Instance.IndexSelect(_full!, 1, _idx!, _packed!);

    [Benchmark]
    public void IndexAdd() => CpuBackend.Instance.IndexAdd(_full!, 1, _idx!, _packed!);

    [GlobalCleanup]
    public void Cleanup()
    {
        _full?.Dispose(); _packed?.Dispose(); _other?.Dispose(); _idx?.Dispose();
    }
}
