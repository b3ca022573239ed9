using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>The CUDA device's memory pool, errors, timing and device selection.</summary>
public sealed class CudaDeviceTests : CudaTest
{
    [Test]
    public void PoolCountsDeviceMemoryByCategoryAndCachesBlocks()
    {
        SimulatorOnly();
        var a = Tensor.Zeros(new Shape(1000), Gpu, MemoryCategory.Parameter);
        var b = Tensor.Zeros(new Shape(10), Gpu, MemoryCategory.Gradient);
        Assert.That(Gpu.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(4000));
        Assert.That(Gpu.Pool.InUse(MemoryCategory.Gradient), Is.EqualTo(40));
        Assert.That(SimulatedCuda.DeviceBytes(Gpu), Is.EqualTo(Gpu.Pool.ReservedBytes), "the pool reserves device memory through cuMemAlloc");
        long reserved = Gpu.Pool.ReservedBytes;
        a.Dispose();
        using var again = Tensor.Empty(new Shape(1000), Gpu);
        Assert.That(Gpu.Pool.ReservedBytes, Is.EqualTo(reserved), "the freed block is reused, not reallocated");
        var (free, total) = ((CudaBackend)Gpu.Backend).MemoryInfo();
        Assert.That(total - free, Is.EqualTo(reserved), "cuMemGetInfo sees the pool's blocks");
        b.Dispose();
    }

    [Test]
    public void Tf32_is_a_device_setting_off_by_default_that_reaches_cublas()
    {
        SimulatorOnly();
        using var a = Tensor.Full(new Shape(8, 8), 1.25f, Gpu);
        int Calls(string fn) => SimulatedCuda.LibraryCalls(Gpu).GetValueOrDefault(fn);
        Assert.That(Gpu.AllowTf32, Is.False, "FP32 unless asked");
        int ex = Calls("cublasGemmStridedBatchedEx");
        Ops.Matmul(a, a).Dispose();
        Assert.That(Calls("cublasGemmStridedBatchedEx"), Is.EqualTo(ex), "no TF32 GEMM by default");
        Gpu.AllowTf32 = true;
        try
        {
            Assert.That(((CudaBackend)Gpu.Backend).AllowTf32, Is.True);
            Ops.Matmul(a, a).Dispose();
            Assert.That(Calls("cublasGemmStridedBatchedEx"), Is.EqualTo(ex + 1), "cublasGemmStridedBatchedEx with COMPUTE_32F_FAST_TF32");
        }
        finally { Gpu.AllowTf32 = false; }
        var cpu = Device.CreateCpu("cpu tf32");
        cpu.AllowTf32 = true;
        Assert.That(cpu.AllowTf32, Is.False, "the CPU computes in FP32 whatever the setting");
    }

    [Test]
    public void A_cublas_allocation_failure_is_retried_after_the_pool_releases_its_cache()
    {
        // 8 MiB of device memory; cuBLAS wants 4 MiB of its own on the first GEMM, after the pool has cached 6 MiB.
        var device = SimulatedCuda.CreateDevice("cuda-sim cublas alloc", 8 << 20, cublasWorkspaceBytes: 4 << 20);
        Tensor.Zeros(new Shape(6 << 18), device).Dispose();
        long cached = device.Pool.ReservedBytes;
        Assert.That(cached, Is.GreaterThanOrEqualTo(6 << 20), "the freed block stays cached in the pool");
        using var a = Tensor.Full(new Shape(4, 4), 0.5f, device);
        using (var c = Ops.Matmul(a, a))
            Assert.That(c.ToArray(), Is.All.EqualTo(1f), "the GEMM ran after the retry");
        Assert.That(device.Pool.ReservedBytes, Is.LessThan(cached), "the cache was released for cuBLAS");

        // Truly full (the memory is held, not cached): the error says what cuBLAS reported.
        var full = SimulatedCuda.CreateDevice("cuda-sim cublas full", 8 << 20, cublasWorkspaceBytes: 4 << 20);
        using var held = Tensor.Zeros(new Shape(6 << 18), full);
        using var b = Tensor.Full(new Shape(4, 4), 0.5f, full);
        Assert.That(() => Ops.Matmul(b, b), Throws.InstanceOf<CudaException>().With.Message.Contains("CUBLAS_STATUS_ALLOC_FAILED"));
    }

    [Test]
    public void A_cuda_tensor_has_no_host_span_and_says_how_to_copy()
    {
        var g = Tensor.Zeros(new Shape(3), Gpu);
        Assert.That(() => g.AsSpan(), Throws.InvalidOperationException.With.Message.Contains(Gpu.Name).And.Message.Contains("ToArray()"));
        g.Dispose();
    }

    [Test]
    public void OutOfMemoryReportsWhoHoldsDeviceMemory()
    {
        Gpu.Pool.LimitBytes = 8192;
        using var held = Tensor.Zeros(new Shape(1500), Gpu, MemoryCategory.Parameter);
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => Tensor.Empty(new Shape(2000), Gpu))!;
        Assert.That(e.Message, Does.Contain(Gpu.Name).And.Contain("Parameter").And.Contain("limit"));
        Gpu.Pool.LimitBytes = null;
    }

    [Test]
    public void LibraryErrorsNameTheLibraryStatusFunctionAndOp()
    {
        SimulatorOnly();
        var api = SimulatedCuda.Api(Gpu);
        using (OpLabel.Push("my_matmul"))
        {
            var e = Assert.Throws<CudaException>(() => api.SgemmStridedBatched(false, false, 4, 4, 4, 1f, 0, 2, 0, 0, 4, 0, 0f, 0, 4, 0, 1, tf32: false))!;
            Assert.That(e.Library, Is.EqualTo("cuBLAS"));
            Assert.That(e.ErrorName, Is.EqualTo("CUBLAS_STATUS_INVALID_VALUE"));
            Assert.That(e.Message, Does.Contain("cublasSgemmStridedBatched").And.Contain("my_matmul").And.Contain("lda 2"));
        }
    }

    /// <summary>
    /// The simulated device has no device clock: an event records the host clock, and a launch runs to
    /// completion when it is issued. So the time between two events is the host time of the work issued
    /// between them: at least that work's own duration (timed inside it), at most the time around both
    /// records, and the launches happen in between.
    /// </summary>
    [Test]
    public void EventsOnTheSimulatorMeasureTheHostTimeOfTheLaunchesBetweenThem()
    {
        SimulatorOnly();
        var x = Tensor.FromArray(Rand.Uniform(1, 4096), new Shape(4096), Gpu);
        var y = Tensor.Empty(new Shape(4096), Gpu);
        int before = SimulatedCuda.Launches(Gpu).GetValueOrDefault("unary_f32");
        double workMs = 0;
        var around = Stopwatch.StartNew();
        float ms = ((CudaBackend)Gpu.Backend).TimeMilliseconds(() =>
        {
            var work = Stopwatch.StartNew();
            for (int i = 0; i < 10; i++) Gpu.Backend.Unary(Sbp.Backends.UnaryOp.Exp, x, y);
            workMs = work.Elapsed.TotalMilliseconds;
            Assert.That(SimulatedCuda.Launches(Gpu)["unary_f32"], Is.EqualTo(before + 10), "the launches ran inside the timed work");
        });
        double aroundMs = around.Elapsed.TotalMilliseconds;
        // ms is a float: allow its rounding (2^-24 relative) on either side.
        Assert.That(workMs, Is.GreaterThan(0));
        Assert.That(ms, Is.GreaterThanOrEqualTo(workMs * (1 - 1e-6)), "the events enclose the work");
        Assert.That(ms, Is.LessThanOrEqualTo(aroundMs * (1 + 1e-6)), "the events lie inside the call");
    }

    /// <summary>Three events on the stream around two pieces of work: the two intervals are non-negative and add up to the whole (both devices).</summary>
    [Test]
    public void ElapsedTimesOfConsecutiveEventsAdd()
    {
        var api = ((CudaBackend)Gpu.Backend).Api;
        var x = Tensor.FromArray(Rand.Uniform(2, 4096), new Shape(4096), Gpu);
        var y = Tensor.Empty(new Shape(4096), Gpu);
        nint[] events = [api.CreateEvent(), api.CreateEvent(), api.CreateEvent()];
        try
        {
            api.RecordEvent(events[0]);
            Gpu.Backend.Unary(Sbp.Backends.UnaryOp.Exp, x, y);
            api.RecordEvent(events[1]);
            for (int i = 0; i < 5; i++) Gpu.Backend.Unary(Sbp.Backends.UnaryOp.Sqrt, x, y);
            api.RecordEvent(events[2]);
            float first = api.ElapsedMilliseconds(events[0], events[1]), second = api.ElapsedMilliseconds(events[1], events[2]);
            float whole = api.ElapsedMilliseconds(events[0], events[2]);
            Assert.That(first, Is.GreaterThanOrEqualTo(0f));
            Assert.That(second, Is.GreaterThanOrEqualTo(0f));
            // cuEventElapsedTime resolves about 0.5 us; the simulator's floats round at 2^-24.
            Assert.That(whole, Is.EqualTo(first + second).Within(1e-3 + 1e-6 * whole));
        }
        finally
        {
            foreach (var e in events) api.DestroyEvent(e);
        }
    }

    [Test]
    public void ResolveNamesTheCpuAndRejectsUnknownNames()
    {
        Assert.That(Device.Resolve("cpu"), Is.SameAs(Device.Cpu));
        Assert.That(Device.Resolve(" CPU ", out var note), Is.SameAs(Device.Cpu));
        Assert.That(note, Is.Null);
        var e = Assert.Throws<ArgumentException>(() => Device.Resolve("tpu"))!;
        Assert.That(e.Message, Does.Contain("tpu").And.Contain("auto"));
    }

    [Test]
    public void WithoutAGpuAutoFallsBackToTheCpuWithANoteAndCudaSaysWhy()
    {
        var (reason, _) = CudaDevices.Probe();
        if (reason is null) Assert.Ignore("A usable CUDA GPU is present; this test covers machines without one.");
        Assert.That(Device.Resolve("auto", out var note), Is.SameAs(Device.Cpu));
        // One short line (issue #25): the full reason is what --device cuda reports.
        Assert.That(note, Does.StartWith("device auto: ").And.Contain("using the CPU").And.Not.Contain("\n"));
        Assert.That(note!.Length, Is.LessThan(100));
        var e = Assert.Throws<CudaUnavailableException>(() => Device.Resolve("cuda"))!;
        Assert.That(e.Reason, Is.EqualTo(reason));
        Assert.That(e.Message, Does.Contain(reason == CudaUnavailableReason.DriverMissing ? "libcuda.so.1 is not" : "libcuda.so.1"));
    }
}
