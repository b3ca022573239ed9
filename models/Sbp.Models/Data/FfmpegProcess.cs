using System.Diagnostics;

namespace Sbp.Models.Data;

/// <summary>
/// Runs the ffmpeg program found by <see cref="FfmpegTools"/> with an argument list (no shell, no quoting),
/// reading standard output as bytes and keeping the last lines of standard error for messages.
/// </summary>
static class FfmpegProcess
{
    public sealed record Result(int ExitCode, long OutputBytes, IReadOnlyList<string> ErrorTail);

    /// <summary>Runs ffmpeg; <paramref name="onOutput"/> receives standard output in chunks (null: discarded).</summary>
    public static Result Run(IEnumerable<string> arguments, Action<ReadOnlySpan<byte>>? onOutput = null)
    {
        var psi = new ProcessStartInfo(Path.Combine(FfmpegTools.Require(), OperatingSystem.IsWindows() ? "ffmpeg.exe" : "ffmpeg"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new IOException("ffmpeg did not start");
        p.StandardInput.Close();
        var tail = new Queue<string>();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not { Length: > 0 } line) return;
            lock (tail)
            {
                tail.Enqueue(line);
                if (tail.Count > 3) tail.Dequeue();
            }
        };
        p.BeginErrorReadLine();
        long total = 0;
        var buffer = new byte[1 << 16];
        var stdout = p.StandardOutput.BaseStream;
        for (int n; (n = stdout.Read(buffer)) > 0;)
        {
            total += n;
            onOutput?.Invoke(buffer.AsSpan(0, n));
        }
        p.WaitForExit();
        lock (tail) return new Result(p.ExitCode, total, tail.ToArray());
    }
}
