using System.Diagnostics;
using System.Globalization;

namespace Sbp.Models.Training;

/// <summary>
/// Progress of an epoch: a bar redrawn in place on a terminal, plain lines (about every 10%) when output
/// is redirected (CI logs, files). Each shows the step within the epoch (counted from the first step of
/// the epoch, also after a resume), the epoch's mean loss so far, clips per second and time per step
/// (of this process's steps), the time elapsed and the time left. Quiet: nothing (ranks but 0 of a data-parallel run).
/// </summary>
public sealed class ProgressLine(string title, int total, int clipsPerStep, int start = 0, bool quiet = false)
{
    readonly bool _terminal = !Console.IsOutputRedirected;
    readonly Stopwatch _watch = Stopwatch.StartNew();
    int _lastDecile = -1;

    /// <summary>The line for <paramref name="done"/> of the epoch's steps with the epoch's mean loss so far.</summary>
    public string Format(int done, double meanLoss, TimeSpan elapsed)
    {
        int ran = Math.Max(done - start, 0);
        double perStep = ran == 0 ? 0 : elapsed.TotalSeconds / ran;
        string rate = ran == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $", {clipsPerStep / perStep:0.0} clips/s, {perStep * 1000:0} ms/step");
        string eta = ran == 0 ? "" : $", eta {TimeSpan.FromSeconds(perStep * (total - done)):mm\\:ss}";
        return string.Create(CultureInfo.InvariantCulture, $"{done}/{total} loss {meanLoss:0.000} (epoch mean){rate}, elapsed {elapsed:mm\\:ss}{eta}");
    }

    public void Report(int done, double meanLoss)
    {
        if (quiet) return;
        string line = Format(done, meanLoss, _watch.Elapsed);
        double fraction = total == 0 ? 1 : (double)done / total;
        if (_terminal)
        {
            int width = 20, filled = (int)(fraction * width);
            Console.Write($"\r{title} [{new string('#', filled)}{new string('.', width - filled)}] {line}   ");
            return;
        }
        int decile = (int)(fraction * 10);
        if (decile == _lastDecile && done != total) return;
        _lastDecile = decile;
        Console.WriteLine($"{title}: {line}");
    }

    public void Done()
    {
        if (_terminal && !quiet) Console.WriteLine();
    }
}
