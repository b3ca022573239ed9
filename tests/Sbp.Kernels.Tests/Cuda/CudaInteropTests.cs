using System.Reflection;
using System.Runtime.InteropServices;
using Sbp.Backends.Cuda;
using Sbp.Backends.Cuda.Interop;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// The bindings against the real NVIDIA driver library from Debian's libcuda1 package (fetched by
/// kernels/fetch-libcuda.sh into $SBP_CUDA_TOOLS/libcuda; CI sets SBP_REQUIRE_LIBCUDA=1 so a missing
/// library fails instead of skipping), and the library resolver's folder rules.
/// </summary>
public sealed class CudaInteropTests
{
    static string LibcudaPath()
    {
        // Loading Debian's 535 copy would shadow a machine's own driver (same soname) for the whole test
        // process. (/dev/nvidiactl is no sign: libcuda's cuInit creates it as root even without a GPU.)
        if (File.Exists("/proc/driver/nvidia/version"))
            Assert.Ignore("This machine has the NVIDIA kernel driver loaded; the Debian libcuda checks are for machines without.");
        var cache = Environment.GetEnvironmentVariable("SBP_CUDA_TOOLS")
            ?? Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "sbp-cuda-tools");
        var path = Path.Combine(cache, "libcuda", "libcuda.so.1");
        if (!File.Exists(path))
        {
            string why = $"{path} is missing; run kernels/fetch-libcuda.sh.";
            if (Environment.GetEnvironmentVariable("SBP_REQUIRE_LIBCUDA") == "1") Assert.Fail(why);
            Assert.Ignore(why);
        }
        return path;
    }

    static IEnumerable<(string Method, string Export)> Bindings(Type type) =>
        type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(m => (m, a: m.GetCustomAttribute<LibraryImportAttribute>()))
            .Where(p => p.a is not null)
            .Select(p => (p.m.Name, p.a!.EntryPoint ?? p.m.Name));

    [Test]
    public void EveryDriverBindingResolvesInTheRealLibcuda()
    {
        nint lib = NativeLibrary.Load(LibcudaPath());
        var bindings = Bindings(typeof(CuDriver)).ToList();
        Assert.That(bindings, Has.Count.GreaterThanOrEqualTo(45), "the driver bindings were found by reflection");
        var missing = bindings.Where(b => !NativeLibrary.TryGetExport(lib, b.Export, out _)).Select(b => b.Export).ToList();
        Assert.That(missing, Is.Empty, "exports missing from libcuda.so.1");
        Assert.That(CuDriver.ElapsedTimeExports.Any(e => NativeLibrary.TryGetExport(lib, e, out _)), Is.True, "cuEventElapsedTime_v2 or its fallback");
        Assert.That(bindings.Select(b => b.Export), Does.Contain("cuMemAlloc_v2").And.Contain("cuMemcpyHtoDAsync_v2").And.Not.Contain("cuMemAlloc"),
            "the _v2 names cuda.h maps to, not the 32-bit originals");
    }

    [Test]
    public void CuInitWithoutAGpuGivesTheClearNoDeviceError()
    {
        // Loaded by path first: the resolver's system search for the soname libcuda.so.1 then finds this copy.
        NativeLibrary.Load(LibcudaPath());
        var (reason, message) = CudaDevices.Probe();
        if (reason is null) Assert.Ignore("A GPU is present: cuInit succeeds.");
        Assert.That(reason, Is.EqualTo(CudaUnavailableReason.NoDevice), message);
        Assert.That(message, Does.Contain("CUDA_ERROR_NO_DEVICE").And.Contain("nvidia-smi"));
        var e = Assert.Throws<CudaUnavailableException>(() => CudaDevices.Get(0))!;
        Assert.That(e.Reason, Is.EqualTo(CudaUnavailableReason.NoDevice));
        var ex = CudaErrors.Driver(CuResult.NoDevice, "cuInit", "test op");
        Assert.That(ex.ErrorName, Is.EqualTo("CUDA_ERROR_NO_DEVICE"));
        Assert.That(ex.ErrorString, Does.Contain("no CUDA-capable device"), "the driver's own cuGetErrorString text");
        Assert.That(ex.Message, Does.StartWith("test op: cuInit failed with CUDA driver error CUDA_ERROR_NO_DEVICE (100)"));
        Assert.That(Device.Resolve("auto", out var note), Is.SameAs(Device.Cpu));
        Assert.That(note, Is.EqualTo("device auto: no GPU; using the CPU (--device cuda says why in full)."), "one short line; the full reason is the exception's");
    }

    [Test]
    public void CublasAndCudnnBindingsUseTheHeaderExportNames()
    {
        var blas = Bindings(typeof(CuBlas)).Select(b => b.Export).ToList();
        Assert.That(blas, Is.SupersetOf(new[] { "cublasCreate_v2", "cublasSetStream_v2", "cublasSetMathMode", "cublasSgemm_v2",
            "cublasSgemmStridedBatched", "cublasGemmEx", "cublasGemmStridedBatchedEx", "cublasSetWorkspace_v2" }));
        var dnn = Bindings(typeof(CuDnn)).Select(b => b.Export).ToList();
        Assert.That(dnn, Is.SupersetOf(new[] { "cudnnCreate", "cudnnSetTensorNdDescriptor", "cudnnSetFilterNdDescriptor",
            "cudnnSetConvolutionNdDescriptor", "cudnnGetConvolutionForwardAlgorithm_v7", "cudnnConvolutionForward",
            "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter", "cudnnBatchNormalizationForwardTraining",
            "cudnnBatchNormalizationBackward", "cudnnSetPoolingNdDescriptor", "cudnnPoolingForward", "cudnnPoolingBackward" }));
        Assert.That(Marshal.SizeOf<CudnnAlgoPerf>(), Is.EqualTo(48), "cudnnConvolutionFwdAlgoPerf_t is 48 bytes on x64");
    }

    [Test]
    public void ResolverPicksCublasPairsAndRefusesIncompleteCudnn()
    {
        var root = Directory.CreateTempSubdirectory("sbp-cudalibs-");
        try
        {
            string only12 = Directory.CreateDirectory(Path.Combine(root.FullName, "a")).FullName;
            string both = Directory.CreateDirectory(Path.Combine(root.FullName, "b")).FullName;
            foreach (var f in new[] { "libcublasLt.so.12", "libcublas.so.12" }) File.WriteAllText(Path.Combine(only12, f), "");
            foreach (var f in new[] { "libcublas.so.13", "libcublasLt.so.13", "libcublasLt.so.12", "libcublas.so.12" }) File.WriteAllText(Path.Combine(both, f), "");
            Assert.That(CudaLibraries.FindCublas([only12, both]), Is.EqualTo((Path.Combine(only12, "libcublasLt.so.12"), Path.Combine(only12, "libcublas.so.12"))));
            Assert.That(CudaLibraries.FindCublas([both]), Is.EqualTo((Path.Combine(both, "libcublasLt.so.13"), Path.Combine(both, "libcublas.so.13"))));
            File.Delete(Path.Combine(only12, "libcublasLt.so.12"));
            Assert.That(CudaLibraries.FindCublas([only12]), Is.Null, "cuBLAS without its cublasLt is not usable");

            string partial = Directory.CreateDirectory(Path.Combine(root.FullName, "c")).FullName;
            string full = Directory.CreateDirectory(Path.Combine(root.FullName, "d")).FullName;
            foreach (var f in CudaLibraries.CudnnFiles) File.WriteAllText(Path.Combine(full, f), "");
            foreach (var f in CudaLibraries.CudnnFiles.Where(f => f != "libcudnn_cnn.so.9")) File.WriteAllText(Path.Combine(partial, f), "");
            Assert.That(CudaLibraries.FindCudnn([partial], out var problems), Is.Null);
            Assert.That(problems.Single(), Does.Contain(partial).And.Contain("libcudnn_cnn.so.9"));
            Assert.That(CudaLibraries.FindCudnn([partial, full], out _), Is.EqualTo(full));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}
