using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>The NCCL check: "ok", "failed" or "not-found" (no libnccl.so.2: reported, not a failure).</summary>
public sealed record NcclCheckResult(string Status, string Detail, string Library, double Ms)
{
    public bool Passed => Status != "failed";
}

/// <summary>
/// A size-1 NCCL run on the kit's GPU through the engine's <see cref="NcclCommunicator"/> (our bindings, the nonblocking
/// communicator, the communication stream, the completion polling): a [1000] float32 all-reduce in place, which must
/// come back unchanged, and an int32 broadcast from rank 0. The bootstrap is a one-rank
/// <see cref="ThreadGroupCommunicator"/> (its abort throws, so the kit still writes its report). Without
/// libnccl.so.2 it reports "libnccl not found" and where it looked; --simulate runs it on the simulated NCCL.
/// </summary>
public static class NcclCheck
{
    public static NcclCheckResult Run(Device device, bool simulate, Action<string> log)
    {
        if (!simulate && !NcclCommunicator.IsAvailable(out var reason))
        {
            log($"nccl: libnccl not found (not a failure): {reason}");
            return new NcclCheckResult("not-found", "libnccl not found: " + reason, "", double.NaN);
        }
        var clock = Stopwatch.StartNew();
        try
        {
            var (problem, library) = simulate
                ? SimulatedNccl.CreateGroup([device], new SimulatedNcclOptions { Timeout = TimeSpan.FromSeconds(60) }).Run(c => (Check(c), c.Library))[0]
                : RunOnGpu(device);
            double ms = clock.Elapsed.TotalMilliseconds;
            var result = problem is null
                ? new NcclCheckResult("ok", "size-1 all-reduce of 1000 floats and a broadcast of 3 ints came back as sent", library, ms)
                : new NcclCheckResult("failed", problem, library, ms);
            log(result.Passed ? $"nccl: ok: {library}, {ms:0} ms (communicator start included)" : $"nccl: FAIL: {problem} ({library})");
            return result;
        }
        catch (Exception e) when ((e is DistributedException or CudaException or ArgumentException or InvalidOperationException) && !StickyError.Is(e))
        {
            log($"nccl: FAIL: {e.GetType().Name}: {e.Message}");
            return new NcclCheckResult("failed", $"{e.GetType().Name}: {e.Message}", "", clock.Elapsed.TotalMilliseconds);
        }
    }

    static (string? Problem, string Library) RunOnGpu(Device device)
    {
        // One rank alone whose abort throws (SingleProcessCommunicator's ends the process), so the kit still writes its report.
        using var bootstrap = ThreadGroupCommunicator.CreateGroup(1, TimeSpan.FromSeconds(60))[0];
        using var comm = NcclCommunicator.Create(bootstrap, device);
        return (Check(comm), comm.Library);
    }

    /// <summary>Null when both collectives gave back what was sent (one rank: the sum is the input itself).</summary>
    static string? Check(NcclCommunicator comm)
    {
        using var scope = TensorScope.Begin();
        var data = Enumerable.Range(0, 1000).Select(i => (i % 97) * 0.25f - 3f).ToArray();
        var buffer = Tensor.FromArray(data, new Shape(1000), comm.Device);
        comm.StartAllReduce(buffer, "the kit's size-1 all-reduce").Wait();
        var sum = buffer.ToArray();
        int bad = Enumerable.Range(0, data.Length).Count(i => sum[i] != data[i]);
        if (bad > 0)
        {
            int first = Enumerable.Range(0, data.Length).First(i => sum[i] != data[i]);
            return $"all-reduce: {bad} of {data.Length} elements changed (first [{first}]: sent {data[first]}, got {sum[first]})";
        }
        var ints = Tensor.FromArray(new[] { 7, -1, 1 << 30 }, new Shape(3), comm.Device);
        comm.Broadcast(ints, 0, "the kit's size-1 broadcast");
        var back = ints.ToIntArray();
        return back.SequenceEqual(new[] { 7, -1, 1 << 30 }) ? null : $"broadcast: got [{string.Join(", ", back)}], sent [7, -1, {1 << 30}]";
    }
}
