using System.Diagnostics;

namespace Sbp.Distributed;

/// <summary>Rounds of values every rank deposits and every rank then reads (by sequence number), with a timeout.</summary>
internal sealed class ThreadRendezvous(int size)
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
    readonly string?[] _left = new string?[size];

    /// <summary>Rank <paramref name="rank"/> will make no more calls (it failed): ranks waiting for it stop waiting, with <paramref name="reason"/>.</summary>
    public void Leave(int rank, string reason)
    {
        lock (_gate)
        {
            _left[rank] = reason;
            Monitor.PulseAll(_gate);
        }
    }

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
                var missing = Enumerable.Range(0, size).Where(r => round.Kinds[r] is null).ToList();
                if (missing.FirstOrDefault(r => _left[r] is not null, -1) is int gone and >= 0)
                {
                    problem = $"rank {rank}: {what} cannot complete: rank {gone} of {size} failed ({_left[gone]}).";
                    return null;
                }
                var left = timeout - Stopwatch.GetElapsedTime(start);
                if (left > TimeSpan.Zero && (Monitor.Wait(_gate, left) || round.Arrived == size)) continue;
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
