using System.Diagnostics;
using System.Runtime.InteropServices;
using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.CudaSim;

/// <summary>
/// A simulated NCCL group's host communicator: ranks are threads, each collective a rendezvous of every rank in host
/// memory, summed in rank order (what MPI is for real ranks). A rank that does not arrive within the timeout makes
/// the waiting ones abort the group (<see cref="SimulatedNcclGroup"/>'s abort action) instead of hanging.
/// </summary>
internal sealed class SimBootstrapCommunicator(SimulatedNcclGroup group, int rank) : Communicator
{
    long _sequence;

    public override int Rank => rank;
    public override int Size => group.Size;
    public override string Engine => "simulated bootstrap";

    T[] Exchange<T>(T mine, string kind, string what)
    {
        var all = group.Host.Exchange(rank, _sequence++, mine, kind, what, Timeout, out var problem);
        if (all is null)
        {
            Abort(3, problem!);
            throw new DistributedException(problem!);
        }
        return all.Select(o => (T)o!).ToArray();
    }

    public override PendingReduction StartAllReduce(Tensor buffer, string what)
    {
        var all = Exchange(buffer.ToArray(), "all-reduce of floats", what);
        var sum = new float[all[0].Length];
        foreach (var part in all)
            for (int i = 0; i < sum.Length; i++) sum[i] += part[i];
        buffer.Backend.CopyFromHost(MemoryMarshal.AsBytes(sum.AsSpan()), buffer);
        return CompletedReduction.Instance;
    }

    public override void AllReduce(Span<double> values, string what)
    {
        var all = Exchange(values.ToArray(), "all-reduce of doubles", what);
        for (int i = 0; i < values.Length; i++)
        {
            double s = 0;
            foreach (var part in all) s += part[i];
            values[i] = s;
        }
    }

    public override void Broadcast(Tensor tensor, int root, string what)
    {
        CheckRoot(root);
        var mine = new byte[tensor.Bytes];
        tensor.Backend.CopyToHost(tensor, mine);
        tensor.Backend.CopyFromHost(Exchange(mine, "broadcast of a tensor", what)[root], tensor);
    }

    public override void Broadcast(Span<byte> bytes, int root, string what)
    {
        CheckRoot(root);
        Exchange(bytes.ToArray(), "broadcast of bytes", what)[root].CopyTo(bytes);
    }

    public override void Barrier(string what) => Exchange(0, "barrier", what);

    public override void Abort(int code, string message) => group.Abort(rank, code, message);

    void CheckRoot(int root)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast: root must be a rank in 0..{Size - 1}.");
    }
}

/// <summary>Rounds of values every rank deposits and every rank then reads (by sequence number), with a timeout.</summary>
internal sealed class SimRendezvous(int size)
{
    sealed class Round(int size)
    {
        public readonly object?[] Values = new object?[size];
        public readonly string?[] Kinds = new string?[size];
        public readonly string?[] Whats = new string?[size];
        public int Arrived, Left;
    }

    readonly object _gate = new();
    readonly Dictionary<long, Round> _rounds = [];

    /// <summary>Every rank's value, by rank; null with <paramref name="problem"/> when the ranks did not all arrive in time or called different collectives.</summary>
    public object?[]? Exchange(int rank, long sequence, object? value, string kind, string what, TimeSpan timeout, out string? problem)
    {
        problem = null;
        lock (_gate)
        {
            if (!_rounds.TryGetValue(sequence, out var round)) _rounds[sequence] = round = new Round(size);
            round.Values[rank] = value;
            round.Kinds[rank] = kind;
            round.Whats[rank] = what;
            if (++round.Arrived == size) Monitor.PulseAll(_gate);
            long start = Stopwatch.GetTimestamp();
            while (round.Arrived < size)
            {
                var left = timeout - Stopwatch.GetElapsedTime(start);
                if (left > TimeSpan.Zero && (Monitor.Wait(_gate, left) || round.Arrived == size)) continue;
                var missing = Enumerable.Range(0, size).Where(r => round.Kinds[r] is null);
                problem = $"rank {rank}: {what} waited {timeout.TotalSeconds:F0} s for rank(s) {string.Join(", ", missing)} of {size} (the timeout): " +
                    "a rank is lost or hung. Ending every rank.";
                return null;
            }
            if (++round.Left == size) _rounds.Remove(sequence);
            int other = Array.FindIndex(round.Kinds, k => k != kind);
            if (other >= 0)
            {
                problem = $"rank {rank}: collective #{sequence} is a {kind} ({what}) here but a {round.Kinds[other]} ({round.Whats[other]}) on rank {other}: " +
                    "every rank must make the same calls in the same order. Ending every rank.";
                return null;
            }
            return round.Values;
        }
    }
}
