using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// Ranks as threads of one process (like PyTorch's threaded process group for tests): data-parallel code runs and is
/// checked without MPI or a second device, and the simulated NCCL of kernels/Sbp.CudaSim uses it as its bootstrap (what
/// MPI is under mpirun). Each collective is a rendezvous of every rank through host arrays, numbered in call order and
/// summed in rank order; ranks that make different calls at the same point, a rank that does not arrive within
/// <see cref="Communicator.Timeout"/> (named), or one that failed end the waiting ranks' call with
/// <see cref="Communicator.Abort"/> instead of hanging. Give each rank its own device.
/// </summary>
public sealed class ThreadGroupCommunicator : Communicator
{
    readonly ThreadRendezvous _rendezvous;
    readonly Action<int, int, string>? _onAbort;
    long _sequence;

    ThreadGroupCommunicator(ThreadRendezvous rendezvous, int rank, int size, Action<int, int, string>? onAbort)
    {
        _rendezvous = rendezvous;
        _onAbort = onAbort;
        Rank = rank;
        Size = size;
    }

    /// <summary>
    /// The <paramref name="size"/> ranks of a new group (give rank r's communicator to thread r). <paramref name="onAbort"/>
    /// gets (rank, exit code, message) when a rank aborts; then, or without it, the aborting call throws a
    /// <see cref="DistributedException"/> on that rank (a test process is never ended).
    /// </summary>
    public static IReadOnlyList<ThreadGroupCommunicator> CreateGroup(int size, TimeSpan timeout, Action<int, int, string>? onAbort = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "ThreadGroupCommunicator: a group has at least one rank.");
        var rendezvous = new ThreadRendezvous(size);
        return Enumerable.Range(0, size).Select(r => new ThreadGroupCommunicator(rendezvous, r, size, onAbort) { Timeout = timeout }).ToList();
    }

    /// <summary>Runs <paramref name="body"/> once per rank of a new group (60 s timeout), each on its own thread; results by rank.</summary>
    public static T[] Run<T>(int size, Func<Communicator, T> body)
    {
        var group = CreateGroup(size, TimeSpan.FromSeconds(60));
        return RunThreads(size, r => body(group[r]), (r, e) => group[r]._rendezvous.Leave(r, $"{e.GetType().Name}: {e.Message}"));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(rank) on <paramref name="size"/> threads and returns the results by rank; rethrows the
    /// exception of the rank that failed first (the cause; the others' failures follow from it). <paramref name="failed"/>
    /// is told at once when a rank fails (to release the ranks waiting for it).
    /// </summary>
    public static T[] RunThreads<T>(int size, Func<int, T> body, Action<int, Exception>? failed = null)
    {
        var results = new T[size];
        var order = new List<Exception>();
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = body(r); }
            catch (Exception e)
            {
                lock (order) order.Add(e);
                failed?.Invoke(r, e);
            }
        }, 16 << 20) { Name = $"rank {r}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (order.Count > 0) ExceptionDispatchInfo.Throw(order[0]);
        return results;
    }

    public override int Rank { get; }
    public override int Size { get; }
    public override string Engine => "threads";

    T[] Exchange<T>(T mine, string kind, string what)
    {
        var all = _rendezvous.Exchange(Rank, _sequence++, mine, kind, what, Timeout, out var problem);
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

    /// <summary>Tells the group's abort action, then throws on this rank: a test process is not ended.</summary>
    public override void Abort(int code, string message)
    {
        _onAbort?.Invoke(Rank, code, message);
        throw new DistributedException(message);
    }

    void CheckRoot(int root)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast: root must be a rank in 0..{Size - 1}.");
    }
}
