using Sbp.Backends.Cuda.Interop;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// The library loader's decisions (<see cref="CudaLibraryPlan"/>, <see cref="CudaLibrarySearch"/>) on fake
/// folders in a temporary directory: empty files with the libraries' names, an injected environment and
/// file-system root, and versions passed in (a fake .so cannot be called). Nothing here loads a library.
/// </summary>
public sealed class CudaLibraryLoadingTests
{
    DirectoryInfo _root = null!;

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("sbp-cudaload-");

    [TearDown]
    public void RemoveRoot() => _root.Delete(recursive: true);

    string At(string relative) => Path.Combine(_root.FullName, relative);

    /// <summary>Creates the folder (relative to the root) with empty files of these names; returns its full path.</summary>
    string Folder(string relative, params string[] files)
    {
        var dir = Directory.CreateDirectory(At(relative)).FullName;
        foreach (var f in files) File.WriteAllText(Path.Combine(dir, f), "");
        return dir;
    }

    static string[] Cublas(int major) => [$"libcublasLt.so.{major}", $"libcublas.so.{major}"];
    static string[] Cudnn => [.. CudaLibraries.CudnnFiles];

    CudaLibrarySearch Search(Dictionary<string, string> env) =>
        new(name => env.GetValueOrDefault(name), root: _root.FullName, workingDirectory: At("cwd"));

    CudaLibraryPlan Plan(Dictionary<string, string> env, CublasFiles? loaded = null)
    {
        var search = Search(env);
        return CudaLibraryPlan.Make(search.Directories(), search.Places(), loaded);
    }

    [Test]
    public void CudnnIsLoadedAfterCublasLtAndCublasFromTheWheelFolders()
    {
        const string sp = "venv/lib/python3.12/site-packages";
        var cu13 = Folder($"{sp}/nvidia/cu13/lib", Cublas(13));
        var cudnn = Folder($"{sp}/nvidia/cudnn/lib", Cudnn);
        var plan = Plan(new() { ["VIRTUAL_ENV"] = At("venv") });

        Assert.That(plan.Cublas, Is.EqualTo(new CublasFiles(Path.Combine(cu13, "libcublasLt.so.13"), Path.Combine(cu13, "libcublas.so.13"), 13)));
        Assert.That(plan.Cudnn, Is.EqualTo(new CudnnFolder(cudnn, null)));
        var order = plan.CudnnLoadOrder(cublasLoaded: false).Select(Path.GetFileName).ToList();
        Assert.That(order, Is.EqualTo(new[] { "libcublasLt.so.13", "libcublas.so.13" }.Concat(CudaLibraries.CudnnFiles)),
            "cuDNN 9 opens libcublasLt by name: cuBLAS (Lt first) is loaded before any cuDNN file, the shim last");
        Assert.That(plan.CudnnLoadOrder(cublasLoaded: true).Select(Path.GetFileName), Is.EqualTo(CudaLibraries.CudnnFiles));
        Assert.That(plan.CublasLoadOrder().Select(Path.GetFileName), Is.EqualTo(Cublas(13)));
        Assert.That(plan.WheelMismatch(), Is.Null);
    }

    [Test]
    public void NewerCudnnSubLibrariesAreLoadedBeforeTheShimWhenPresent()
    {
        const string sp = "venv/lib/python3.12/site-packages";
        Folder($"{sp}/nvidia/cu13/lib", Cublas(13));
        var cudnn = Folder($"{sp}/nvidia/cudnn/lib", [.. Cudnn, "libcudnn_ext.so.9"]);
        var order = Plan(new() { ["VIRTUAL_ENV"] = At("venv") }).CudnnLoadOrder(cublasLoaded: true).Select(Path.GetFileName).ToList();
        Assert.That(order[^2..], Is.EqualTo(new[] { "libcudnn_ext.so.9", "libcudnn.so.9" }), "an optional sub-library the folder has, just before the shim");
        Assert.That(order, Does.Not.Contain("libcudnn_engines_tensor_ir.so.9"), "one it lacks is not asked for");
    }

    [Test]
    public void CudnnForCuda12NextToCublas13IsRefusedNamingBoth()
    {
        const string blas = "/env/nvidia/cu13/lib/libcublas.so.13", shim = "/env/nvidia/cudnn/lib/libcudnn.so.9";
        var message = CudaLibraryPlan.CheckVersions(blas, 13000, shim, 12080);
        Assert.That(message, Does.Contain(blas).And.Contain(shim).And.Contain("CUDA 12.8").And.Contain("CUDA 13.0")
            .And.Contain("libcublasLt.so.12").And.Contain("nvidia-cudnn-cu13").And.Contain(CudaLibraries.DirsVariable));
        Assert.That(CudaLibraryPlan.CheckVersions(blas, 13000, shim, 13010), Is.Null, "minor versions within a major are compatible");
        Assert.That(CudaLibraryPlan.CheckVersions("/x/libcublas.so.12", 12080, shim, 12040), Is.Null);
        Assert.That(CudaLibraryPlan.CheckVersions("/x/libcublas.so.12", 12080, shim, 13000), Does.Contain("nvidia-cudnn-cu12").And.Contain("nvidia-cublas)"),
            "the CUDA 13 cuBLAS wheel has no -cu suffix");
    }

    [Test]
    public void ACudnnWheelForAnotherCudaIsRefusedBeforeLoading()
    {
        const string sp = "venv/lib/python3.12/site-packages";
        var cu13 = Folder($"{sp}/nvidia/cu13/lib", Cublas(13));
        var cudnn = Folder($"{sp}/nvidia/cudnn/lib", Cudnn);
        Folder($"{sp}/nvidia_cudnn_cu12-9.5.1.17.dist-info");
        var plan = Plan(new() { ["VIRTUAL_ENV"] = At("venv") });

        Assert.That(plan.Cudnn, Is.EqualTo(new CudnnFolder(cudnn, 12)), "the wheel's name declares CUDA 12");
        Assert.That(plan.WheelMismatch(), Does.Contain(Path.Combine(cudnn, "libcudnn.so.9")).And.Contain(Path.Combine(cu13, "libcublas.so.13"))
            .And.Contain("nvidia-cudnn-cu12").And.Contain("nvidia-cudnn-cu13"));
    }

    [Test]
    public void TheCublasOfCudnnsCudaIsChosenWhenBothAreThere()
    {
        // A CUDA 12 toolkit on LD_LIBRARY_PATH (searched first) and a CUDA 13 venv whose cuDNN wheel is for 13.
        var toolkit = Folder("cuda-12/lib64", Cublas(12));
        const string sp = "venv/lib/python3.12/site-packages";
        var cu13 = Folder($"{sp}/nvidia/cu13/lib", Cublas(13));
        var cudnn13 = Folder($"{sp}/nvidia/cudnn/lib", Cudnn);
        Folder($"{sp}/nvidia_cudnn_cu13-9.13.0.50.dist-info");
        var env = new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = toolkit, ["VIRTUAL_ENV"] = At("venv") };

        var plan = Plan(env);
        Assert.That(plan.Cublas!.Blas, Is.EqualTo(Path.Combine(cu13, "libcublas.so.13")), "the pair matching cuDNN's CUDA, not the first pair");
        Assert.That(plan.Cudnn, Is.EqualTo(new CudnnFolder(cudnn13, 13)));
        Assert.That(CudaLibraryPlan.Make([toolkit], []).Cublas!.Major, Is.EqualTo(12), "without cuDNN the first pair");

        // cuBLAS 12 already loaded (a GEMM came first): a cuDNN of unknown CUDA is preferred to the CUDA 13 wheel.
        var other = Folder("cudnn-any", Cudnn);
        var loaded = new CublasFiles(Path.Combine(toolkit, "libcublasLt.so.12"), Path.Combine(toolkit, "libcublas.so.12"), 12);
        var search = Search(env);
        var withLoaded = CudaLibraryPlan.Make([.. search.Directories(), other], search.Places(), loaded);
        Assert.That(withLoaded.Cublas, Is.SameAs(loaded));
        Assert.That(withLoaded.Cudnn, Is.EqualTo(new CudnnFolder(other, null)));
        Assert.That(withLoaded.CudnnLoadOrder(cublasLoaded: true), Has.None.Contains("cublas"));
    }

    [Test]
    public void SearchCoversVariablesPyenvAndEnvironmentsNobodyActivated()
    {
        var home = At("home/user");
        string Nvidia(string prefix, string wheel = "cublas", string py = "python3.12", string packages = "site-packages") =>
            Folder($"{prefix}/lib/{py}/{packages}/nvidia/{wheel}/lib");
        var explicitDir = Folder("explicit");
        var ld = Folder("ld");
        var pyenv = Nvidia("home/user/.pyenv/versions/3.11.9", py: "python3.11");
        var local = Nvidia("home/user/.local");
        var system = Nvidia("usr", "cudnn", "python3", "dist-packages");
        var optVenv = Nvidia("opt/venv", "cu13");
        var optConda = Nvidia("opt/conda", "nccl");
        var condaEnv = Nvidia("home/user/miniconda3/envs/torch");
        var project = Nvidia("home/user/project/.venv");
        var workspace = Nvidia("workspace/.venv");
        var cwd = Nvidia("cwd/.venv");
        var toolkit = Folder("usr/local/cuda/lib64");
        var env = new Dictionary<string, string>
        {
            ["HOME"] = home,
            [CudaLibraries.DirsVariable] = explicitDir + ":" + At("not-there"),
            ["LD_LIBRARY_PATH"] = $"{ld}::{ld}/:{explicitDir}",
        };

        var dirs = Search(env).Directories();
        Assert.That(dirs, Is.EqualTo(new[] { explicitDir, ld, cwd, pyenv, local, system, optVenv, project, condaEnv, workspace, optConda, toolkit }),
            "variables first, each folder once, missing ones dropped; the CUDA wheels' folders of the Python environments in their " +
            "order, then their other wheels (nccl); the toolkit last");
        Assert.That(dirs, Is.Unique);
    }

    [Test]
    public void WheelFoldersOfTheCudaLibrariesComeBeforeTheOtherWheelsOfAnEnvironment()
    {
        const string sp = "venv/lib/python3.12/site-packages/nvidia";
        var nccl = Folder($"{sp}/nccl/lib");
        var cudnn = Folder($"{sp}/cudnn/lib");
        var cu13 = Folder($"{sp}/cu13/lib");
        var runtime = Folder($"{sp}/cuda_runtime/lib");
        var dirs = Search(new() { ["VIRTUAL_ENV"] = At("venv"), ["HOME"] = At("nohome") }).Directories();
        Assert.That(dirs, Is.EqualTo(new[] { cu13, cudnn, runtime, nccl }));
    }

    [Test]
    public void NotFoundMessagesNameEveryPlaceSearched()
    {
        var env = new Dictionary<string, string> { ["HOME"] = At("home/user") };
        var empty = Plan(env);
        Assert.That(empty.Cublas, Is.Null);
        string message = empty.CublasNotFound();
        Assert.That(message, Does.Contain("no existing folder").And.Contain($"{CudaLibraries.DirsVariable} (unset)").And.Contain("LD_LIBRARY_PATH (unset)")
            .And.Contain(At("home/user/.pyenv/versions/*/lib/python3*/*-packages/nvidia/*/lib"))
            .And.Contain(At("usr/lib/python3*/*-packages/nvidia/*/lib"))
            .And.Contain(At("opt/*/.venv/lib/python3*/*-packages/nvidia/*/lib"))
            .And.Contain(At("usr/local/cuda/lib64"))
            .And.Contain("nvidia-cublas-cu12"));

        // Folders that exist but hold nothing are listed by name; an incomplete cuDNN says what it lacks.
        var ld = Folder("ld");
        var partial = Folder("usr/local/cuda/lib64", [.. Cudnn.Where(f => f != "libcudnn_adv.so.9")]);
        env["LD_LIBRARY_PATH"] = ld;
        var plan = Plan(env);
        Assert.That(plan.CublasNotFound(), Does.Contain("Searched 2 folder(s): " + ld + ", " + partial).And.Contain(CudaLibraries.DirsVariable));
        Assert.That(plan.Cudnn, Is.Null);
        Assert.That(plan.CudnnNotFound(), Does.Contain(partial + " has libcudnn.so.9 but lacks libcudnn_adv.so.9").And.Contain("nvidia-cudnn-cu13"));
    }

    [Test]
    public void ADriverOlderThanTheLibrariesCudaIsRefused()
    {
        var message = CudaLibraryPlan.CheckDriver(12040, 13, "/env/libcublas.so.13");
        Assert.That(message, Does.Contain("CUDA up to 12.4").And.Contain("/env/libcublas.so.13").And.Contain("CUDA 13").And.Contain("580")
            .And.Contain("nvidia-cudnn-cu12"));
        Assert.That(CudaLibraryPlan.CheckDriver(13000, 13, "x"), Is.Null);
        Assert.That(CudaLibraryPlan.CheckDriver(13010, 12, "x"), Is.Null, "a newer driver runs older CUDA majors");
        Assert.That(CudaLibraryPlan.CheckDriver(null, 13, "x"), Is.Null, "no driver version, no verdict");
    }

    [Test]
    public void TheDriverCheckReadsTheRealDriversVersion()
    {
        // Debian's libcuda (kernels/fetch-libcuda.sh) answers cuDriverGetVersion without a GPU; loaded by path,
        // the loader's search for the soname finds it. Not on a machine with its own driver (same soname).
        if (File.Exists("/proc/driver/nvidia/version")) Assert.Ignore("This machine has its own NVIDIA driver.");
        var tools = Environment.GetEnvironmentVariable("SBP_CUDA_TOOLS")
            ?? Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "sbp-cuda-tools");
        var libcuda = Path.Combine(tools, "libcuda", "libcuda.so.1");
        if (!File.Exists(libcuda)) Assert.Ignore($"{libcuda} is missing; run kernels/fetch-libcuda.sh.");
        System.Runtime.InteropServices.NativeLibrary.Load(libcuda);
        var version = CudaLibraries.DriverVersion();
        Assert.That(version, Is.InRange(11000, 20000), "cuDriverGetVersion through a function pointer");
        Assert.That(CudaLibraryPlan.CheckDriver(version, version!.Value / 1000 + 1, "libcublas"), Does.Contain($"CUDA up to {CudaLibraryPlan.Format(version.Value)}"));
        Assert.That(CudaLibraryPlan.CheckDriver(version, version.Value / 1000, "libcublas"), Is.Null);
    }
}
