namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// Where cuBLAS, cuDNN and NCCL are looked for (docs/CUDA-BINDINGS.md section 5), in order:
/// <list type="number">
/// <item><c>SBP_CUDA_LIB_DIRS</c> (':'-separated), then the folders of <c>LD_LIBRARY_PATH</c>
/// (read, not relied on: the loader reads it only at process start);</item>
/// <item>the <c>site-packages/nvidia/{cu13,cublas,cudnn}/lib</c> folders, then every
/// <c>nvidia/*/lib</c>, of the Python environments in <see cref="PythonPrefixes"/>, activated or not
/// (the GPU machine's wheels may sit in a venv nobody activated);</item>
/// <item><c>/usr/local/cuda/lib64</c>.</item>
/// </list>
/// The environment, working folder and file-system root are injectable so that tests build fake
/// layouts in a temporary folder instead of depending on the machine.
/// </summary>
public sealed class CudaLibrarySearch
{
    readonly Func<string, string?> _variable;
    readonly string _root;
    readonly string _workingDirectory;

    /// <param name="variable">Reads an environment variable (default: the process's).</param>
    /// <param name="root">Prefix for the fixed system paths (/usr, /opt, /workspace); "/" on a real machine.</param>
    /// <param name="workingDirectory">Where a project's <c>.venv</c> is looked for (default: the current folder).</param>
    public CudaLibrarySearch(Func<string, string?>? variable = null, string root = "/", string? workingDirectory = null)
    {
        _variable = variable ?? Environment.GetEnvironmentVariable;
        _root = root;
        _workingDirectory = workingDirectory ?? Environment.CurrentDirectory;
    }

    /// <summary>This process's environment on this machine.</summary>
    public static CudaLibrarySearch Machine => new();

    /// <summary>Folders named by <see cref="CudaLibraries.DirsVariable"/>, searched first.</summary>
    public IEnumerable<string> ExplicitDirectories => Split(CudaLibraries.DirsVariable);

    /// <summary>
    /// The Python installation prefixes whose <c>lib/python3*/{site,dist}-packages</c> are searched, as
    /// patterns ('*' matches one folder level): activated environments first, then the usual places of
    /// pyenv, user installs, the system Python, /opt (conda, venvs), home folders (~/venv, ~/miniconda3,
    /// project .venv folders, conda envs) and /workspace.
    /// </summary>
    public IReadOnlyList<string> PythonPrefixes()
    {
        var prefixes = new List<string>();
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Value(v) is { } p) prefixes.Add(p);
        prefixes.Add(Path.Combine(_workingDirectory, ".venv"));
        var home = Value("HOME");
        if (Value("PYENV_ROOT") is { } pyenv) prefixes.Add(Path.Combine(pyenv, "versions", "*"));
        if (home is not null)
        {
            prefixes.Add(Path.Combine(home, ".pyenv", "versions", "*"));
            prefixes.Add(Path.Combine(home, ".local"));
        }
        prefixes.Add(Rooted("usr/local"));
        prefixes.Add(Rooted("usr"));
        foreach (var opt in new[] { "opt/*", "opt/*/.venv", "opt/*/envs/*" }) prefixes.Add(Rooted(opt));
        if (home is not null)
            foreach (var sub in new[] { ".venv", "*", "*/.venv", "*/envs/*" }) prefixes.Add(Path.Combine(home, sub));
        foreach (var ws in new[] { "workspace/.venv", "workspace/*", "workspace/*/.venv" }) prefixes.Add(Rooted(ws));
        return prefixes.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The patterns of the site-packages folders searched (lib64 only for the system Python, where it is a real folder).</summary>
    public IReadOnlyList<string> SitePackagePatterns() =>
        PythonPrefixes().Select(p => Path.Combine(p, "lib", "python3*", "*-packages"))
            .Append(Rooted("usr/lib64/python3*/site-packages")).ToList();

    /// <summary>The toolkit folders searched last.</summary>
    public IReadOnlyList<string> ToolkitDirectories() =>
        [Rooted("usr/local/cuda/lib64"), Rooted("usr/local/cuda/targets/x86_64-linux/lib")];

    /// <summary>The folders searched for cuBLAS, cuDNN and NCCL, in order, existing ones only, each once.</summary>
    public IReadOnlyList<string> Directories()
    {
        var dirs = new List<string>();
        dirs.AddRange(ExplicitDirectories);
        dirs.AddRange(Split("LD_LIBRARY_PATH"));
        var sitePackages = SitePackagePatterns().SelectMany(Glob).ToList();
        // The folders of the CUDA 13 (nvidia/cu13) and CUDA 12 (nvidia/cublas, nvidia/cudnn) wheels first,
        // then the other wheels' folders (nccl, cuda_runtime, ...) of the same environments.
        foreach (var sp in sitePackages)
            foreach (var sub in new[] { "cu13", "cublas", "cudnn" })
                dirs.Add(Path.Combine(sp, "nvidia", sub, "lib"));
        foreach (var sp in sitePackages)
            dirs.AddRange(Glob(Path.Combine(sp, "nvidia", "*", "lib")));
        dirs.AddRange(ToolkitDirectories());
        return dirs.Select(Normalize).Where(d => d.Length > 0 && Directory.Exists(d)).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>What was looked at, for the not-found messages: the variables' values and every pattern.</summary>
    public IReadOnlyList<string> Places()
    {
        var places = new List<string> { Described(CudaLibraries.DirsVariable), Described("LD_LIBRARY_PATH") };
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Value(v) is null) places.Add($"{v} (unset)");
        places.AddRange(SitePackagePatterns().Select(p => Path.Combine(p, "nvidia", "*", "lib")));
        places.AddRange(ToolkitDirectories());
        return places;
    }

    /// <summary>The existing folders matching <paramref name="pattern"/>, an absolute path whose segments may hold '*', sorted per level.</summary>
    public static IEnumerable<string> Glob(string pattern)
    {
        IEnumerable<string> current = [Path.IsPathRooted(pattern) ? Path.GetPathRoot(pattern)! : ""];
        foreach (var part in pattern.Split('/', StringSplitOptions.RemoveEmptyEntries))
            current = part.Contains('*')
                ? current.SelectMany(d => SafeDirs(d, part)).ToList()
                : current.Select(d => Path.Combine(d, part)).Where(Directory.Exists).ToList();
        return current;
    }

    static IEnumerable<string> SafeDirs(string dir, string pattern)
    {
        try { return Directory.Exists(dir) ? Directory.GetDirectories(dir, pattern).Order(StringComparer.Ordinal) : []; }
        catch (UnauthorizedAccessException) { return []; }
        catch (IOException) { return []; }
    }

    string? Value(string name) => _variable(name) is { Length: > 0 } v ? v : null;

    IEnumerable<string> Split(string name) => Value(name)?.Split(':', StringSplitOptions.RemoveEmptyEntries) ?? [];

    string Described(string name) => Value(name) is { } v ? $"{name}={v}" : $"{name} (unset)";

    string Rooted(string relative) => Path.Combine(_root, relative);

    static string Normalize(string dir)
    {
        try { return Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)); }
        catch (ArgumentException) { return ""; }
    }
}
