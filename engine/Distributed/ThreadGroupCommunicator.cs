using System.Runtime.InteropServices;
using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// Ranks as threads of one process (like PyTorch's threaded process group for tests): data-parallel code runs and is
/// checked without MPI or a second device. Each collective is a rendezvous of every rank (deposit, then read), summed
/// in rank order through host arrays; a rank that does not arrive within <see cref="Communicator.Timeout"/> makes the
/// others throw a <see cref="TimeoutException"/> instead of hanging. Give each rank its own device.
/// </summary>
public sealed class ThreadGroupCommunicator : Communicator
{
    sealed class Group(int size)
    {
        public readonly Barrier Barrier = new(size);
        public readonly object?[] Slots = new object?[size];
    }

    readonly Group _group;

    ThreadGroupCommunicator(Group group, int rank)
    {
        _group = group;
        Rank = rank;
    }

    /// <summary>Runs <paramref name="body"/> once per rank, each on its own thread, and returns their results by rank (rethrowing the exception of the rank that failed first).</summary>
    public static T[] Run<T>(int size, Func<Communicator, T> body)
    {
        var group = new Group(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var order = new List<Exception>();
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = body(new ThreadGroupCommunicator(group, r) { Timeout = TimeSpan.FromSeconds(60) }); }
            catch (Exception e)
            {
                errors[r] = e;
                lock (order) order.Add(e);
                group.Barrier.RemoveParticipant();   // the others' next rendezvous does not wait for this rank
            }
        }, 16 << 20)).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (order.Count > 0) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(order[0]);   // the first to fail: the cause
        return results;
    }

    public override int Rank { get; }
    public override int Size => _group.Slots.Length;
    public override string Engine => "threads";

    /// <summary>Every rank's value, by rank, after each deposited its own.</summary>
    T[] Exchange<T>(T mine)
    {
        _group.Slots[Rank] = mine;
        Wait();
        var all = _group.Slots.Select(o => (T)o!).ToArray();
        Wait();
        return all;
    }

    void Wait()
    {
        if (!_group.Barrier.SignalAndWait(Timeout))
            throw new TimeoutException($"rank {Rank}: the other ranks did not reach the same collective within {Timeout.TotalSeconds:0} s.");
    }

    public override PendingReduction StartAllReduce(Tensor buffer, string what)
    {
        var all = Exchange(buffer.ToArray());
        var sum = new float[all[0].Length];
        foreach (var part in all)
            for (int i = 0; i < sum.Length; i++) sum[i] += part[i];
        buffer.Backend.CopyFromHost(MemoryMarshal.AsBytes(sum.AsSpan()), buffer);
        return CompletedReduction.Instance;
    }

    public override void AllReduce(Span<double> values, string what)
    {
        var all = Exchange(values.ToArray());
        for (int i = 0; i < values.Length; i++) values[i] = all.Sum(a => a[i]);
    }

    public override void Broadcast(Tensor tensor, int root, string what)
    {
        var mine = new byte[tensor.Bytes];
        tensor.Backend.CopyToHost(tensor, mine);
        tensor.Backend.CopyFromHost(Exchange(mine)[root], tensor);
    }

    public override void Broadcast(Span<byte> bytes, int root, string what) => Exchange(bytes.ToArray())[root].CopyTo(bytes);

    public override void Barrier(string what) => Exchange(0);

    /// <summary>Throws on this rank (the others' next collective then fails at the timeout): a test process is not ended.</summary>
    public override void Abort(int code, string message) => throw new DistributedException($"abort {code}: {message}");
}
