// sbp-gpu: the GPU run kit (see KitOptions.Usage). Exit codes: 0 all checks passed, 1 a check failed,
// 2 no usable GPU (driver missing, no device, init failure), 3 incomplete (the time budget ran out), 64 bad arguments.
// This file finds the device; KitRun runs the phases.
using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.GpuKit;
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
if (options.Version)
{
    Console.WriteLine($"sbp-gpu {Sbp.EngineInfo.Version}");
    return 0;
}

var total = Stopwatch.StartNew();
var report = new KitReport { Command = "sbp-gpu " + string.Join(' ', args), BudgetSeconds = options.BudgetSeconds };
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
var plan = LibraryPlanInfo.Find();
if (device.Backend is CudaBackend cuda)
{
    cuda.AllowTf32 = options.Tf32;
    report.Device = DeviceReport.Describe(device, plan);
    var d = report.Device;
    Log($"device: {device.Name}: {cuda.Description}, {Sbp.Memory.MemoryPool.FormatBytes(d.TotalBytes)} total, {Sbp.Memory.MemoryPool.FormatBytes(d.FreeBytes)} free");
    foreach (var l in d.Libraries) Log($"  {l.Library} {l.Version} in {l.Folder} ({Path.GetFileName(l.Path)})");
    foreach (var line in plan.Describe()) Log($"  {line}");
}
Log($"budget: {options.BudgetSeconds:0} s; phases: {string.Join(", ", (options.CudnnFirst ? ["cudnn-first"] : Array.Empty<string>()).Concat(options.Phases))}; report in {options.OutDir}");
report.Write(options.OutDir);

int code = new KitRun(options, device, Device.CreateCpu("cpu reference"), report, plan, total, Log).Run();
Log(code switch { 0 => "sbp-gpu: all checks passed", 3 => "sbp-gpu: INCOMPLETE: the time budget ran out (what ran passed)", _ => "sbp-gpu: SOME CHECKS FAILED" });
return Finish(code);
