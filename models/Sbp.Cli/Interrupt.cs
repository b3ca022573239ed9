using System.Runtime.InteropServices;

namespace Sbp.Cli;

/// <summary>
/// Ctrl-C (SIGINT) while a command trains: the first asks it to stop after the current step (the
/// trainer saves a checkpoint when there is an output folder and says how to resume; the program then
/// exits with 130); a second one ends the process at once. SIGUSR1 asks the same stop without the second
/// chance: Open MPI's mpirun forwards SIGUSR1 to every rank (it ends the job at once on Ctrl-C), so
/// `kill -USR1 &lt;mpirun's pid&gt;` stops a data-parallel run after the same step on every rank, with a checkpoint.
/// </summary>
internal sealed class Interrupt : IDisposable
{
    /// <summary>SIGUSR1 on Linux (PosixSignal takes raw signal numbers).</summary>
    const PosixSignal UserSignal1 = (PosixSignal)10;
    readonly CancellationTokenSource _cancel = new();
    readonly PosixSignalRegistration _interrupt, _user;

    public Interrupt()
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (_cancel.IsCancellationRequested) return;   // the second Ctrl-C: the default, end now
            context.Cancel = true;
            Console.Error.WriteLine("Ctrl-C: stopping after this step (press it again to quit at once).");
            _cancel.Cancel();
        });
        _user = PosixSignalRegistration.Create(UserSignal1, context =>
        {
            context.Cancel = true;
            if (_cancel.IsCancellationRequested) return;
            Console.Error.WriteLine("SIGUSR1: stopping after this step.");
            _cancel.Cancel();
        });
    }

    public CancellationToken Token => _cancel.Token;

    public void Dispose()
    {
        _interrupt.Dispose();
        _user.Dispose();
        _cancel.Dispose();
    }
}
