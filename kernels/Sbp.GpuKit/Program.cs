// sbp-gpu: the GPU run kit (see KitOptions.Usage). Exit codes: 0 all checks passed, 1 a check failed,
// 2 no usable GPU (driver missing, no device, init failure), 64 bad arguments.
using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.GpuKit;
using Sbp.OpCases;
using Sbp.Stochastic;
using Sbp.Tensors;

KitOptions options;
try
{
    options = KitOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"sbp-gpu: {e.Message}");
    Console.Error.WriteLine(KitOptions.Usage);
    return 64;
}
if (options.Help)
{
    Console.WriteLine(KitOptions.Usage);
    return 0;
}

var report = new KitReport { Command = "sbp-gpu " + string.Join(' ', args) };
var total = Stopwatch.StartNew();
void Log(string line) => Console.WriteLine(line);
int Finish(int code)
{
    report.TotalSeconds = total.Elapsed.TotalSeconds;
    var (json, md) = report.Write(options.OutDir);
    Log($"wrote {json} and {md}");
    return code;
}

Device device;
if (options.Simulate)
{
    device = SimulatedCuda.CreateDevice("cuda-sim");
    Log("--simulate: no GPU is used; the default shapes are shrunk to fit the simulator");
}
else
{
    var (reason, message) = CudaDevices.Probe();
    if (reason is { } r)
    {
        report.Status = r switch
        {
            CudaUnavailableReason.DriverMissing => "no-driver",
            CudaUnavailableReason.NoDevice => "no-device",
            _ => "cuda-init-failed",
        };
        report.Message = message;
        Console.Error.WriteLine(r switch
        {
            CudaUnavailableReason.DriverMissing => $"sbp-gpu: no NVIDIA driver on this machine: {message}",
            CudaUnavailableReason.NoDevice => $"sbp-gpu: the NVIDIA driver is installed but there is no GPU: {message}",
            _ => $"sbp-gpu: CUDA could not be initialised: {message}",
        });
        Console.Error.WriteLine("sbp-gpu: nothing was run. (`sbp-gpu --simulate` runs the same checks on the simulated device.)");
        return Finish(2);
    }
    try
    {
        device = CudaDevices.Resolve(options.Device);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"sbp-gpu: --device: {e.Message}");
        return 64;
    }
    catch (CudaUnavailableException e)
    {
        report.Status = "cuda-init-failed";
        report.Message = e.Message;
        Console.Error.WriteLine($"sbp-gpu: {e.Message}");
        return Finish(2);
    }
}
if (device.Kind != DeviceKind.Cuda)
{
    Console.Error.WriteLine($"sbp-gpu: --device {options.Device} is not a CUDA device; the kit compares a GPU against the CPU.");
    return 64;
}
if (device.Backend is CudaBackend cuda)
{
    cuda.AllowTf32 = options.Tf32;
    var (free, totalBytes) = cuda.MemoryInfo();
    Log($"device: {device.Name}: {cuda.Description}, {Sbp.Memory.MemoryPool.FormatBytes(totalBytes)} total, {Sbp.Memory.MemoryPool.FormatBytes(free)} free");
}
var cpu = Device.CreateCpu("cpu reference");

try
{
    if (!options.SkipOps)
    {
        Log($"ops: {OpTable.All.Count} cases, {device.Name} against the CPU backend");
        report.Ops.AddRange(OpComparison.Run(device, cpu, options.OpsFilter, Log));
        Log($"ops: {report.Ops.Count(o => o.Passed)}/{report.Ops.Count} passed");
    }

    if (!options.SkipTrain)
    {
        Log($"train step: {options.TrainModel}, batch {options.TrainBatch}, strided keep 0.5, {device.Name} against the CPU");
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute })
        {
            var t = TrainStepCheck.Run(device, cpu, options.TrainModel, options.TrainBatch, mode);
            report.TrainSteps.Add(t);
            Log(t.Passed
                ? $"  ok    {mode}: loss {t.CpuLoss:G6} (CPU) / {t.DeviceLoss:G6}, max grad diff {t.MaxGradDiff:G3}, max weight diff {t.MaxWeightDiff:G3}, {t.Regions} regions, {t.DeviceMs:0} ms"
                : $"  FAIL  {mode}: {t.Error ?? t.WorstGrad ?? t.WorstWeight ?? $"loss {t.CpuLoss} (CPU) vs {t.DeviceLoss}"}");
        }
    }

    if (!options.SkipNccl) report.Nccl = NcclCheck.Run(device, options.Simulate, Log);

    if (!options.SkipBench)
    {
        var b = options.Bench;
        report.Bench = b;
        Log($"benchmark: {b.Model}, batch {(b.Batch == 0 ? "auto" : b.Batch)}, {b.Frames} x {b.Size} x {b.Size}, {b.Warmup} warm-up + {b.Steps} timed steps{(b.Tf32 ? ", TF32" : "")}");
        var (rows, used) = Benchmark.Run(device, b, Log);
        report.Bench = used;
        report.BenchRows.AddRange(rows);
    }

    // Now that GEMMs and convolutions ran, cuBLAS and cuDNN are loaded: their versions can be read.
    if (device.Backend is CudaBackend)
    {
        report.Device = DeviceReport.Describe(device);
        Log(report.Device.Libraries.Count == 0 ? "libraries: none of libcuda / cuBLAS / cuDNN / NCCL is loaded in this process" : "libraries:");
        foreach (var l in report.Device.Libraries) Log($"  {l.Library} {l.Version} ({l.Path})");
    }
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    report.Status = "error";
    report.Message = $"{e.GetType().Name}: {e.Message}";
    Console.Error.WriteLine($"sbp-gpu: {report.Message}");
    Console.Error.WriteLine(e.StackTrace);
    if (report.Device is null && device.Backend is CudaBackend)
    {
        try { report.Device = DeviceReport.Describe(device); }
        catch (Exception inner) when (inner is not OutOfMemoryException) { Console.Error.WriteLine($"sbp-gpu: could not describe the device: {inner.Message}"); }
    }
    return Finish(1);
}

if (!report.Passed)
{
    report.Status = "failed";
    report.Message = "some checks failed; see the tables";
}
Log(report.Passed ? "sbp-gpu: all checks passed" : "sbp-gpu: SOME CHECKS FAILED");
return Finish(report.Passed ? 0 : 1);
