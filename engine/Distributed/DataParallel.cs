using System.Diagnostics;
using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>Settings of <see cref="DataParallel"/> (PyTorch DDP's defaults).</summary>
public sealed record DataParallelOptions
{
    /// <summary>Most gradient bytes per bucket (bucket_cap_mb = 25).</summary>
    public long BucketBytes { get; init; } = 25L << 20;
    /// <summary>The first bucket's cap, small so communication starts early in backward (1 MiB).</summary>
    public long FirstBucketBytes { get; init; } = 1L << 20;
}

/// <summary>
/// Data-parallel gradient averaging with PyTorch DDP's semantics. Parameters are grouped into buckets in reverse
/// order (the order backward usually produces their gradients), the first one small; during the last micro-batch's
/// backward (<see cref="Attach"/>), each parameter's final gradient is copied into its bucket and multiplied by
/// 1/size, and a full bucket is all-reduced without blocking, strictly in bucket order, while backward goes on.
/// <see cref="Finish"/> waits for the rest and copies the averages back into the gradients. A parameter without a
/// gradient on this rank counts as zeros and gets the average when any rank had one (none: it stays without).
/// Micro-batches before the last accumulate locally with no communication (DDP's no_sync). Call
/// <see cref="Start"/> once before training: rank 0's parameters and buffers are copied to every rank, after
/// a check that every rank has the same ones (names, shapes, dtypes).
/// </summary>
public sealed class DataParallel : IGradientReadyObserver, IDisposable
{
    readonly Communicator _comm;
    readonly List<GradientBucket> _buckets = [];
    readonly Dictionary<Tensor, (GradientBucket Bucket, int Slot)> _where = new(ReferenceEqualityComparer.Instance);
    readonly Tensor? _one, _zero;
    List<(string Name, Tensor Tensor)> _buffers = [];
    int _nextLaunch;
    bool _attached;
    long _backwardStart, _backwardEnd;

    public DataParallel(Communicator communicator, IEnumerable<(string Name, Tensor Param)> parameters, DataParallelOptions? options = null)
    {
        _comm = communicator;
        Options = options ?? new DataParallelOptions();
        Parameters = parameters.Where(p => p.Param.RequiresGrad).ToList();
        if (Parameters.Count == 0) throw new ArgumentException("DataParallel: no parameter requires grad; there is nothing to average.");
        if (_comm.Size == 1) return;
        var device = Parameters[0].Param.Device;
        var current = new List<(string, Tensor)>();
        long bytes = 0;
        void Close()
        {
            if (current.Count == 0) return;
            var bucket = new GradientBucket(_buckets.Count, current.ToList(), device);
            for (int k = 0; k < current.Count; k++) _where[current[k].Item2] = (bucket, k);
            _buckets.Add(bucket);
            current.Clear();
            bytes = 0;
        }
        foreach (var (name, p) in Enumerable.Reverse(Parameters))
        {
            if (p.Device != device) throw new ArgumentException($"DataParallel: parameter '{name}' is on {p.Device}, the first on {device}; one rank trains on one device.");
            if (p.DType != DType.Float32) throw new ArgumentException($"DataParallel: parameter '{name}' is {p.DType}; gradients are averaged in float32.");
            long cap = _buckets.Count == 0 ? Options.FirstBucketBytes : Options.BucketBytes;
            if (current.Count > 0 && bytes + p.Bytes > cap) Close();
            current.Add((name, p));
            bytes += p.Bytes;
        }
        Close();
        _one = Tensor.Full(new Shape(1), 1f, device).DetachFromScope();
        _zero = Tensor.Zeros(new Shape(1), device).DetachFromScope();
    }

    public DataParallelOptions Options { get; }
    public IReadOnlyList<(string Name, Tensor Param)> Parameters { get; }
    public Communicator Communicator => _comm;

    /// <summary>Bucket sizes in gradient elements, in launch order.</summary>
    public IReadOnlyList<int> BucketElements => _buckets.Select(b => b.GradientElements).ToList();

    /// <summary>The last synchronized step's timing: <see cref="Finish"/>'s wait after backward ended, and how many buckets had finished by then.</summary>
    public SyncTiming LastTiming { get; private set; }

    /// <summary>
    /// Checks that every rank has the same parameters and buffers and the same <paramref name="settings"/> lines
    /// (optimizer, SBP, anything that must agree), then copies rank 0's parameters and buffers to every rank.
    /// </summary>
    public void Start(IEnumerable<(string Name, Tensor Tensor)> buffers, IEnumerable<string> settings)
    {
        var buffered = _buffers = buffers.ToList();
        var lines = new List<string>(settings);
        lines.AddRange(Parameters.Select(p => $"parameter {p.Name} {p.Param.DType} {p.Param.Shape}"));
        lines.AddRange(buffered.Select(b => $"buffer {b.Name} {b.Tensor.DType} {b.Tensor.Shape}"));
        _comm.CheckSame(lines, "data parallel start (model, optimizer and settings)");
        using var noGrad = Tape.NoGrad();
        foreach (var (name, p) in Parameters) _comm.Broadcast(p, 0, $"parameter {name}");
        foreach (var (name, b) in buffered) _comm.Broadcast(b, 0, $"buffer {name}");
        if (_comm.Size > 1) AllReduceMs = TimeAllReduces();
    }

    /// <summary>How long the all-reduces of every bucket take alone, with no backward to overlap (measured at <see cref="Start"/>
    /// on zeros: the median of 5 rounds after 3 warm-up rounds, which pay the engine's first-use costs): the communication a
    /// step has to hide.</summary>
    public double AllReduceMs { get; private set; }

    double TimeAllReduces()
    {
        var rounds = new List<double>();
        for (int round = 0; round < 8; round++)
        {
            foreach (var b in _buckets) b.Buffer.Backend.Fill(b.Buffer, 0f);
            long start = Stopwatch.GetTimestamp();
            var pending = _buckets.Select(b => _comm.StartAllReduce(b.Buffer, $"timing of gradient bucket {b.Index}")).ToList();
            pending.ForEach(r => r.Wait());
            if (round >= 3) rounds.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        rounds.Sort();
        return rounds[rounds.Count / 2];
    }

    /// <summary>
    /// Copies rank 0's buffers (batch norm's running statistics) to every rank, as DDP does before every forward
    /// (broadcast_buffers): each rank's training-mode batch norm normalizes with its own batch, and the running statistics
    /// all ranks carry on with, and rank 0 saves, are rank 0's. The buffers are those given to <see cref="Start"/>.
    /// </summary>
    public void SyncBuffers()
    {
        if (_comm.Size == 1) return;
        using var noGrad = Tape.NoGrad();
        foreach (var (name, b) in _buffers) _comm.Broadcast(b, 0, $"buffer {name}");
    }

    /// <summary>Averages gradients during this tape's backward (the last micro-batch of a step); <see cref="Finish"/> after it.</summary>
    public void Attach(Tape tape)
    {
        if (_comm.Size == 1) return;
        if (_attached) throw new InvalidOperationException("DataParallel.Attach: the previous step was not finished (call Finish after each synchronized backward).");
        foreach (var b in _buckets) b.Reset();
        _nextLaunch = 0;
        _attached = true;
        _backwardStart = Stopwatch.GetTimestamp();
        tape.GradientObserver = this;
    }

    void IGradientReadyObserver.GradientReady(Tensor leaf)
    {
        if (!_attached || !_where.TryGetValue(leaf, out var at)) return;
        var bucket = at.Bucket;
        var p = bucket.Parameters[at.Slot].Param;
        using (OpLabel.Push("ddp.copy_in"))
        using (Tape.NoGrad())
        {
            var buffer = bucket.Buffer;
            int offset = bucket.Offset(at.Slot), count = (int)p.Numel;
            if (p.Grad is { } g)
                using (var flat = g.View(new Shape(count), register: false))
                    buffer.Backend.CopyAlongDim(flat, 0, buffer, offset, 0, count, accumulate: false);
            else
            {
                bucket.HadUnused = true;
                using var zeros = Tensor.Zeros(new Shape(count), buffer.Device);
                buffer.Backend.CopyAlongDim(zeros, 0, buffer, offset, 0, count, accumulate: false);
            }
            buffer.Backend.CopyAlongDim(p.Grad is null ? _zero! : _one!, 0, buffer, bucket.GradientElements + at.Slot, 0, 1, accumulate: false);
        }
        bucket.Ready++;
        LaunchReady();
    }

    void IGradientReadyObserver.BackwardProgress()
    {
        if (!_attached) return;
        for (int i = 0; i < _nextLaunch; i++) _buckets[i].Pending?.Test();
    }

    /// <summary>Starts the all-reduce of every complete bucket in order (a bucket waits for the ones before it).</summary>
    void LaunchReady()
    {
        while (_nextLaunch < _buckets.Count && _buckets[_nextLaunch].Ready == _buckets[_nextLaunch].Parameters.Count)
        {
            var bucket = _buckets[_nextLaunch++];
            using (Tape.NoGrad())
                bucket.Buffer.Backend.Unary(UnaryOp.MulScalar, bucket.Buffer, bucket.Buffer, 1f / _comm.Size);
            bucket.Pending = _comm.StartAllReduce(bucket.Buffer, $"gradient bucket {bucket.Index} of {_buckets.Count}");
        }
    }

    /// <summary>
    /// After the attached backward: marks the parameters no recorded op reached as ready (zeros here), waits for
    /// every bucket and writes the averaged gradients into the parameters' Grad.
    /// </summary>
    public void Finish()
    {
        if (_comm.Size == 1) return;
        if (!_attached) throw new InvalidOperationException("DataParallel.Finish: no backward was attached (call Attach(tape) before the last micro-batch's Backward).");
        _backwardEnd = Stopwatch.GetTimestamp();
        var observer = (IGradientReadyObserver)this;
        foreach (var bucket in _buckets)
            if (bucket.Ready < bucket.Parameters.Count)
            {
                // Parameters the tape never listed (unused, or only inside a re-run region): final now.
                bucket.Ready = 0;
                for (int k = 0; k < bucket.Parameters.Count; k++) observer.GradientReady(bucket.Parameters[k].Param);
            }
        int doneBeforeEnd = _buckets.Count(b => b.Pending is { } r && r.Test());
        _attached = false;
        using var noGrad = Tape.NoGrad();
        using var label = OpLabel.Push("ddp.copy_out");
        foreach (var bucket in _buckets)
        {
            bucket.Pending!.Wait();
            var used = bucket.HadUnused ? ReadFlags(bucket) : null;
            for (int k = 0; k < bucket.Parameters.Count; k++)
            {
                var p = bucket.Parameters[k].Param;
                int count = (int)p.Numel;
                if (p.Grad is null)
                {
                    if (used is null || used[k] <= 0) continue;   // no rank had a gradient: it stays without one
                    p.Grad = Tensor.Empty(p.Shape, p.Device, DType.Float32, MemoryCategory.Gradient).DetachFromScope();
                }
                using var flat = p.Grad.View(new Shape(count), register: false);
                bucket.Buffer.Backend.CopyAlongDim(bucket.Buffer, bucket.Offset(k), flat, 0, 0, count, accumulate: false);
            }
        }
        long end = Stopwatch.GetTimestamp();
        LastTiming = new SyncTiming(Stopwatch.GetElapsedTime(_backwardStart, _backwardEnd).TotalMilliseconds,
            Stopwatch.GetElapsedTime(_backwardEnd, end).TotalMilliseconds, doneBeforeEnd, _buckets.Count);
    }

    /// <summary>The bucket's summed per-parameter flags (above 0: some rank had a gradient), read without its gradients.</summary>
    static float[] ReadFlags(GradientBucket bucket)
    {
        int n = bucket.Parameters.Count;
        using var flags = Tensor.Empty(new Shape(n), bucket.Buffer.Device);
        bucket.Buffer.Backend.CopyAlongDim(bucket.Buffer, bucket.GradientElements, flags, 0, 0, n, accumulate: false);
        return flags.ToArray();
    }

    public void Dispose()
    {
        foreach (var b in _buckets) b.Dispose();
        _buckets.Clear();
        _one?.Dispose();
        _zero?.Dispose();
    }
}

/// <summary>
/// One synchronized step: backward's time, the wait after it for the all-reduces still running (communication
/// that did not overlap backward), and how many of the buckets had completed when backward ended.
/// </summary>
public readonly record struct SyncTiming(double BackwardMs, double ExposedMs, int BucketsDoneDuringBackward, int Buckets);
