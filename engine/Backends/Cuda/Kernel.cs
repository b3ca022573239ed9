using System.Text.RegularExpressions;

namespace Sbp.Backends.Cuda;

/// <summary>One parameter of a kernel: its name in the PTX (without the <c>p_</c> prefix) and its kind.</summary>
internal readonly record struct KernelParam(string Name, CudaArgKind Kind, int Bytes = 0)
{
    public override string ToString() => Kind == CudaArgKind.Bytes ? $".b8 {Name}[{Bytes}]"
        : $"{Kind switch { CudaArgKind.Int64 => ".u64", CudaArgKind.Float32 => ".f32", _ => ".u32" }} {Name}";
}

/// <summary>
/// A kernel of kernels/*.ptx with its parameter list, as the launches see it: <see cref="CudaBackend"/>
/// launches a <see cref="Kernel"/>, never a bare entry name, and checks the arguments against the list;
/// the list itself is checked against the kernel's <c>.param</c> list when its module loads
/// (<see cref="CheckModule"/>), so a kernel and its launcher cannot drift apart silently.
/// </summary>
internal sealed partial record Kernel(string Entry, params KernelParam[] Params)
{
    public static KernelParam U64(string name) => new(name, CudaArgKind.Int64);
    public static KernelParam U32(string name) => new(name, CudaArgKind.Int32);
    public static KernelParam F32(string name) => new(name, CudaArgKind.Float32);
    /// <summary>A byte array passed by value (the shape metadata of the strided kernels).</summary>
    public static KernelParam Bytes(string name, int bytes) => new(name, CudaArgKind.Bytes, bytes);

    /// <summary>Throws unless <paramref name="args"/> match the parameter list in number and kind.</summary>
    public void CheckArgs(ReadOnlySpan<CudaArg> args)
    {
        bool ok = args.Length == Params.Length;
        for (int i = 0; ok && i < args.Length; i++)
            ok = args[i].Kind == Params[i].Kind && (args[i].Kind != CudaArgKind.Bytes || args[i].Data?.Length == Params[i].Bytes);
        if (!ok)
            throw new InvalidOperationException($"{Entry}: launched with ({string.Join(", ", args.ToArray().Select(a => a.Kind == CudaArgKind.Bytes ? $"Bytes[{a.Data?.Length}]" : a.Kind.ToString()))}) but it takes ({string.Join(", ", Params)}).");
    }

    [GeneratedRegex(@"\.visible\s+\.entry\s+(\w+)\s*\(([^)]*)\)")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"\.param\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+(\w+)(?:\[(\d+)\])?")]
    private static partial Regex ParamPattern();

    /// <summary>The .param list of every entry of a PTX module, as kernel parameters.</summary>
    public static IReadOnlyDictionary<string, KernelParam[]> ParamsOf(string ptx) =>
        EntryPattern().Matches(ptx).ToDictionary(m => m.Groups[1].Value, m => ParamPattern().Matches(m.Groups[2].Value).Select(p => new KernelParam(
            p.Groups[2].Value.StartsWith("p_", StringComparison.Ordinal) ? p.Groups[2].Value[2..] : p.Groups[2].Value,
            p.Groups[3].Success ? CudaArgKind.Bytes : p.Groups[1].Value switch
            {
                "u64" or "s64" or "b64" => CudaArgKind.Int64,
                "f32" => CudaArgKind.Float32,
                _ => CudaArgKind.Int32,
            },
            p.Groups[3].Success ? int.Parse(p.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) : 0)).ToArray());

    /// <summary>
    /// Checks every kernel <see cref="PtxKernels"/> declares for <paramref name="module"/> against the module's
    /// PTX text (same entries, same parameters in the same order): a clear error naming the kernel otherwise.
    /// </summary>
    public static void CheckModule(string module, string ptx)
    {
        var actual = ParamsOf(ptx);
        var declared = PtxKernels.All.Where(k => PtxLibrary.ModuleOf(k.Entry) == module).ToList();
        foreach (var k in declared)
        {
            if (!actual.TryGetValue(k.Entry, out var ps))
                throw new InvalidOperationException($"kernels/{module}.ptx has no entry {k.Entry}, which PtxKernels declares.");
            if (!ps.SequenceEqual(k.Params))
                throw new InvalidOperationException($"kernels/{module}.ptx: {k.Entry} takes ({string.Join(", ", ps)}) but PtxKernels declares ({string.Join(", ", k.Params)}); update the declaration with the kernel.");
        }
        var missing = actual.Keys.Except(declared.Select(k => k.Entry)).ToList();
        if (missing.Count > 0) throw new InvalidOperationException($"kernels/{module}.ptx: {string.Join(", ", missing)} {(missing.Count == 1 ? "has" : "have")} no declaration in PtxKernels.");
    }

    public override string ToString() => Entry;
}
