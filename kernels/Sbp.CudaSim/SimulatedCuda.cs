using Sbp.Backends.Cuda;
using Sbp.PtxSim;
using Sbp.Tensors;

namespace Sbp.CudaSim;

/// <summary>
/// A simulated CUDA device for CI and development without a GPU: the engine's real
/// <see cref="CudaBackend"/> over <see cref="SimCudaApi"/>, where device memory is the PTX simulator's
/// checked host memory, kernel launches run in the PTX simulator, and cuBLAS / cuDNN calls run
/// reference implementations of their documented semantics. Tensors made on the returned device run
/// every op through the same code path as on a GPU (slowly: keep shapes small).
/// </summary>
public static class SimulatedCuda
{
    /// <summary>
    /// A new simulated device with its own memory of <paramref name="memoryBytes"/> (what cuMemGetInfo reports as total).
    /// With <paramref name="cublasWorkspaceBytes"/>, its cuBLAS takes that much device memory on the first GEMM, outside
    /// the engine's pool, and fails as the real one does when it does not fit.
    /// </summary>
    public static Device CreateDevice(string name = "cuda-sim", long memoryBytes = 1L << 32, long cublasWorkspaceBytes = 0) =>
        CudaDevices.Create(name, new SimCudaApi(memoryBytes) { CublasWorkspaceBytes = cublasWorkspaceBytes });

    /// <summary>Kernel launches on a simulated device so far, by PTX entry.</summary>
    public static IReadOnlyDictionary<string, int> Launches(Device device) => Api(device).Launches;

    /// <summary>cuBLAS / cuDNN calls on a simulated device so far, by exported function name.</summary>
    public static IReadOnlyDictionary<string, int> LibraryCalls(Device device) => Api(device).LibraryCalls;

    /// <summary>
    /// The PTX simulator that runs a simulated device's kernels; its <see cref="PtxSimulator.Seed"/> keys the errors of
    /// the approximate instructions and the order of atomics, blocks and warps (SBP_PTXSIM_SEED sets the default).
    /// </summary>
    public static PtxSimulator Simulator(Device device) => Api(device).Simulator;

    /// <summary>The host synchronizations and host-device copies of a simulated device (reset it before the work to count).</summary>
    public static SimTransfers Transfers(Device device) => Api(device).Transfers;

    /// <summary>Bytes the device's simulated memory holds (what the pool reserved, cached blocks included).</summary>
    public static long DeviceBytes(Device device) => Api(device).Memory.BytesInUse;

    internal static SimCudaApi Api(Device device) =>
        (device.Backend as CudaBackend)?.Api as SimCudaApi
        ?? throw new ArgumentException($"SimulatedCuda.Api: device '{device.Name}' is not a simulated CUDA device.", nameof(device));
}
