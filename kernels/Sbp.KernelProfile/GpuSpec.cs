namespace Sbp.KernelProfile;

/// <summary>
/// The figures the timeline model needs from a GPU (public spec sheets, ../shared docs GPU-READINESS.md): SMs, HBM
/// bandwidth, FP32, TF32 and BF16/FP16 tensor-core rates (dense), the SM clock, and what a launch costs on the device. <see cref="LaunchMicroseconds"/>
/// is the GPU-side gap between back-to-back kernels; <see cref="LibraryEfficiency"/> is the fraction of peak cuBLAS and
/// cuDNN reach on large, well-tiled problems.
/// </summary>
public sealed record GpuSpec(string Name, int Sms, double HbmBytesPerSecond, double Fp32Flops, double Tf32Flops, double Bf16Flops, double ClockHz,
    double LaunchMicroseconds = 2.0, double LibraryEfficiency = 0.8)
{
    // Dense tensor-core rates from NVIDIA's H100 / H200 data sheets (the sparse figures are twice these).
    public static GpuSpec H100Sxm { get; } = new("H100 SXM5 80 GB", 132, 3.35e12, 67e12, 495e12, 989e12, 1.98e9);
    public static GpuSpec H100Pcie { get; } = new("H100 PCIe 80 GB", 114, 2.0e12, 51e12, 378e12, 756e12, 1.755e9);
    public static GpuSpec H200 { get; } = new("H200 SXM 141 GB", 132, 4.8e12, 67e12, 495e12, 989e12, 1.98e9);

    /// <summary>h100-sxm (default), h100-pcie or h200.</summary>
    public static GpuSpec Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "h100" or "h100-sxm" => H100Sxm,
        "h100-pcie" => H100Pcie,
        "h200" => H200,
        _ => throw new ArgumentException($"--gpu '{name}': use h100-sxm, h100-pcie or h200."),
    };

    /// <summary>Warp instructions the whole GPU issues per second (4 schedulers per SM, one issue per cycle each).</summary>
    public double WarpIssuesPerSecond => Sms * 4.0 * ClockHz;

    /// <summary>Resident warps per SM a memory-bound kernel needs to cover DRAM latency (a rule of thumb: about 16 of 64).</summary>
    public const int WarpsToHideLatency = 16;
}
