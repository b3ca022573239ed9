using System.Runtime.InteropServices;

namespace Sbp.Cli;

/// <summary>
/// Ctrl-C (SIGINT) while a command trains: the first asks it to stop after the current step (the
/// trainer saves a checkpoint when there is an output folder and says how to resume; the program then
/// exits with 130); a second one ends the process at once.
/// </summary>
internal sealed class Interrupt : IDisposable
{
    readonly CancellationTokenSource _cancel = new();
    readonly PosixSignalRegistration _registration;

    public Interrupt() => _registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
    {
        if (_cancel.IsCancellationRequested) return;   // the second Ctrl-C: the default, end now
        context.Cancel = true;
        Console.Error.WriteLine("Ctrl-C: stopping after this step (press it again to quit at once).");
        _cancel.Cancel();
    });

    public CancellationToken Token => _cancel.Token;

    public void Dispose()
    {
        _registration.Dispose();
        _cancel.Dispose();
    }
}
