using System.Text;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// A group of processes that train together (one rank each): sums across ranks, broadcasts, barriers and an abort
/// that ends every rank. Engines: <see cref="SingleProcessCommunicator"/> (size 1), <see cref="MpiCommunicator"/>
/// (Open MPI, host memory) and <see cref="NcclCommunicator"/> (NCCL, GPU memory). Every rank must make the same
/// calls in the same order (each call names what it is for, so a timeout or an error says where ranks stood).
/// </summary>
public abstract class Communicator : IDisposable
{
    /// <summary>This process's rank, 0 .. Size - 1.</summary>
    public abstract int Rank { get; }

    /// <summary>How many ranks train together.</summary>
    public abstract int Size { get; }

    /// <summary>"single", "mpi" or "nccl".</summary>
    public abstract string Engine { get; }

    /// <summary>Rank 0: the one that writes metrics and checkpoints.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>How long a collective may wait for the other ranks before this rank aborts them all (a hung or lost peer).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Starts summing the float32 <paramref name="buffer"/> (contiguous, on a device this engine serves) in place over
    /// every rank; the result is there once the returned reduction completes. <paramref name="what"/> names it in errors.
    /// </summary>
    public abstract PendingReduction StartAllReduce(Tensor buffer, string what);

    /// <summary>Sums <paramref name="values"/> (host doubles) in place over every rank; blocks until done.</summary>
    public abstract void AllReduce(Span<double> values, string what);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="tensor"/> into every rank's (same shape, in place).</summary>
    public abstract void Broadcast(Tensor tensor, int root, string what);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="bytes"/> into every rank's (same length).</summary>
    public abstract void Broadcast(Span<byte> bytes, int root, string what);

    /// <summary>Returns once every rank has called it.</summary>
    public abstract void Barrier(string what);

    /// <summary>Ends every rank now with exit code <paramref name="code"/>, after printing <paramref name="message"/> on this one's error output.</summary>
    public abstract void Abort(int code, string message);

    /// <summary>Sums one value over every rank.</summary>
    public double Sum(double value, string what)
    {
        Span<double> v = [value];
        AllReduce(v, what);
        return v[0];
    }

    /// <summary>Rank <paramref name="root"/>'s text on every rank.</summary>
    public string Broadcast(string text, int root, string what)
    {
        var mine = Encoding.UTF8.GetBytes(text);
        var length = BitConverter.GetBytes((long)mine.Length);
        Broadcast(length, root, what + " (length)");
        var bytes = Rank == root ? mine : new byte[BitConverter.ToInt64(length)];
        Broadcast(bytes, root, what);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>
    /// Checks that every rank has the same <paramref name="lines"/> (a description of the model, optimizer and
    /// settings, one fact per line) as rank 0, on every rank; throws a <see cref="DistributedMismatchException"/>
    /// naming, for each differing rank, the first line where it differs (the same error on every rank).
    /// </summary>
    public void CheckSame(IReadOnlyList<string> lines, string what)
    {
        if (Size == 1) return;
        var root = Broadcast(string.Join('\n', lines), 0, what).Split('\n');
        int first = -1;
        for (int i = 0; i < Math.Max(root.Length, lines.Count) && first < 0; i++)
            if (i >= root.Length || i >= lines.Count || root[i] != lines[i]) first = i;
        var where = new double[Size];
        where[Rank] = first + 1;   // 0: same as rank 0
        AllReduce(where, what + " (first differences)");
        var problems = new List<string>();
        for (int r = 1; r < Size; r++)
        {
            if (where[r] == 0) continue;
            int line = (int)where[r] - 1;
            string rootLine = line < root.Length ? $"'{root[line]}'" : "nothing more";
            string mine = r == Rank ? (line < lines.Count ? $"'{lines[line]}'" : "nothing more") : "something else (its own error says what)";
            problems.Add($"rank {r} differs from rank 0 at line {line + 1}: rank 0 has {rootLine}, rank {r} has {mine}");
        }
        if (problems.Count > 0) throw new DistributedMismatchException(what, problems);
    }

    /// <summary>Ends the engine's use of the group (MPI_Finalize, ncclCommDestroy); every rank calls it.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);

    public override string ToString() => $"{Engine} rank {Rank} of {Size}";
}
