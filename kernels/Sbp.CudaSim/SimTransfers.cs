using Sbp.Memory;

namespace Sbp.CudaSim;

/// <summary>
/// What a simulated device's host waited for and copied: every host synchronization (a device-to-host copy,
/// a stream synchronize, an event wait) with the op that caused it (<see cref="OpLabel.Current"/>), and the
/// host-to-device copies, which are asynchronous (staged through pinned memory on a real device). A training
/// step that should wait on the host only to read its loss is checked against these counts.
/// </summary>
public sealed class SimTransfers
{
    readonly object _gate = new();
    readonly List<string> _syncs = [];
    readonly List<string> _uploads = [];
    long _uploadBytes, _downloadBytes;
    int _downloads;

    /// <summary>Host synchronizations so far, each as "what (op)".</summary>
    public IReadOnlyList<string> HostSyncs { get { lock (_gate) return [.. _syncs]; } }

    /// <summary>Host-to-device copies so far, each as "bytes (op)".</summary>
    public IReadOnlyList<string> Uploads { get { lock (_gate) return [.. _uploads]; } }

    public long UploadBytes { get { lock (_gate) return _uploadBytes; } }

    public int Downloads { get { lock (_gate) return _downloads; } }

    public long DownloadBytes { get { lock (_gate) return _downloadBytes; } }

    /// <summary>Forgets everything counted so far (call before the step to be measured).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _syncs.Clear();
            _uploads.Clear();
            _uploadBytes = _downloadBytes = 0;
            _downloads = 0;
        }
    }

    internal void Sync(string what)
    {
        string where = Caller();
        lock (_gate) _syncs.Add($"{what} ({where})");
    }

    /// <summary>The op and the engine methods that asked (the innermost frames outside the device and the tensor's copy helpers).</summary>
    static string Caller()
    {
        var frames = new System.Diagnostics.StackTrace().GetFrames()
            .Select(System.Diagnostics.DiagnosticMethodInfo.Create)
            .Where(m => m?.DeclaringTypeName is { } t && t.StartsWith("Sbp.", StringComparison.Ordinal) && !t.StartsWith("Sbp.CudaSim.", StringComparison.Ordinal)
                        && t is not ("Sbp.Tensors.Tensor" or "Sbp.Backends.Cuda.CudaBackend"))
            .Take(3)
            .Select(m => $"{m!.DeclaringTypeName[(m.DeclaringTypeName.LastIndexOf('.') + 1)..]}.{m.Name}");
        return $"{OpLabel.Current}: {string.Join(" < ", frames)}";
    }

    internal void Upload(long bytes)
    {
        lock (_gate)
        {
            _uploads.Add($"{bytes} B ({Caller()})");
            _uploadBytes += bytes;
        }
    }

    internal void Download(long bytes)
    {
        lock (_gate)
        {
            _downloads++;
            _downloadBytes += bytes;
            _syncs.Add($"device-to-host copy of {bytes} B ({Caller()})");
        }
    }

    /// <summary>The counts, with the causes of the syncs and uploads grouped (most frequent first).</summary>
    public override string ToString()
    {
        lock (_gate)
            return $"{_syncs.Count} host sync(s){Grouped(_syncs)}; {_uploads.Count} upload(s) of {_uploadBytes} B{Grouped(_uploads)}; " +
                   $"{_downloads} download(s) of {_downloadBytes} B";
    }

    static string Grouped(List<string> items) => items.Count == 0 ? "" :
        ": " + string.Join("; ", items.GroupBy(i => i).OrderByDescending(g => g.Count()).Take(24).Select(g => $"{g.Count()}x {g.Key}"));
}
