using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Drops known-harmless lines that libtorch writes to the process's native stderr. On machines where NNPACK cannot
/// start, libtorch logs "Could not initialize NNPACK! Reason: Unsupported hardware." for every float32 Conv2d call
/// (hundreds per case) and then uses its other kernels; TORCH_CPP_LOG_LEVEL does not silence it. File descriptor 2 is
/// pointed at a pipe whose lines are copied to the real stderr unless they match.
/// </summary>
internal static unsafe partial class NativeStderrFilter
{
    static Thread? _pump;
    static int _saved = -1;

    public static void Start(Func<string, bool> drop)
    {
        if (!OperatingSystem.IsLinux() || _pump is not null) return;
        int* fds = stackalloc int[2];
        if (Pipe(fds) != 0) return;   // no pipe: leave stderr as it is
        _saved = Dup(2);
        if (_saved < 0 || Dup2(fds[1], 2) < 0) { Close(fds[0]); Close(fds[1]); return; }
        Close(fds[1]);
        var reader = new StreamReader(new FileStream(new SafeFileHandle(fds[0], ownsHandle: true), FileAccess.Read));
        var writer = new FileStream(new SafeFileHandle(_saved, ownsHandle: false), FileAccess.Write);
        _pump = new Thread(() =>
        {
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                if (drop(line)) continue;
                writer.Write(Encoding.UTF8.GetBytes(line + "\n"));
                writer.Flush();
            }
        }) { IsBackground = true, Name = "stderr filter" };
        _pump.Start();
    }

    /// <summary>Points stderr back at the original and gives the pump a moment to pass on what is still in the pipe.</summary>
    public static void Stop()
    {
        if (_pump is null) return;
        Console.Error.Flush();
        Dup2(_saved, 2);
        _pump.Join(TimeSpan.FromMilliseconds(300));   // the pipe may stay open through Console.Error's own dup
        _pump = null;
    }

    [LibraryImport("libc", EntryPoint = "pipe")]
    private static partial int Pipe(int* fds);

    [LibraryImport("libc", EntryPoint = "dup")]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "dup2")]
    private static partial int Dup2(int from, int to);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
