namespace Sbp.Models.Data;

/// <summary>A producer failed on an item; the original exception is the inner one.</summary>
public sealed class BackgroundWorkException(int item, Exception inner)
    : Exception($"background worker failed on item {item}: {inner.Message}", inner)
{
    public int Item { get; } = item;
}

/// <summary>
/// Produces items 0..count-1 on <c>workers</c> background threads and hands them out in index order.
/// Bounded: at most <c>capacity</c> items are being produced or waiting to be taken, so memory stays
/// bounded however slow the consumer is. An exception in a producer stops the queue and is rethrown
/// (wrapped in <see cref="BackgroundWorkException"/>) when the consumer reaches that item. Dispose
/// stops the workers (items not yet taken are dropped; IDisposable ones are disposed).
/// </summary>
public sealed class BackgroundQueue<T> : IDisposable
{
    readonly Func<int, CancellationToken, T> _produce;
    readonly int _count;
    readonly SemaphoreSlim _space;
    readonly CancellationTokenSource _cts = new();
    readonly Dictionary<int, T> _done = [];
    readonly object _lock = new();
    readonly Thread[] _threads;
    int _nextIn, _nextOut, _inFlight, _maxInFlight, _liveWorkers;
    (int Item, Exception Error)? _failure;
    bool _disposed;

    public BackgroundQueue(int count, Func<int, CancellationToken, T> produce, int workers = 2, int capacity = 4, string name = "data")
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"BackgroundQueue: count must be >= 0 (got {count}).");
        if (workers <= 0) throw new ArgumentOutOfRangeException(nameof(workers), $"BackgroundQueue: workers must be > 0 (got {workers}).");
        if (capacity < workers) throw new ArgumentOutOfRangeException(nameof(capacity), $"BackgroundQueue: capacity ({capacity}) must be >= workers ({workers}).");
        _count = count;
        _produce = produce;
        Capacity = capacity;
        _space = new SemaphoreSlim(capacity, capacity);
        _threads = new Thread[Math.Min(workers, Math.Max(1, count))];
        _liveWorkers = _threads.Length;
        for (int w = 0; w < _threads.Length; w++)
        {
            _threads[w] = new Thread(Work) { IsBackground = true, Name = $"{name} worker {w}" };
            _threads[w].Start();
        }
    }

    public int Count => _count;
    public int Capacity { get; }

    /// <summary>The most items that were ever being produced or waiting at once (never above <see cref="Capacity"/>).</summary>
    public int MaxInFlight { get { lock (_lock) return _maxInFlight; } }

    void Work()
    {
        try { WorkLoop(); }
        finally
        {
            lock (_lock) { _liveWorkers--; Monitor.PulseAll(_lock); }
        }
    }

    void WorkLoop()
    {
        var token = _cts.Token;
        while (true)
        {
            try { _space.Wait(token); }
            catch (OperationCanceledException) { return; }
            int i;
            lock (_lock)
            {
                if (_nextIn >= _count || token.IsCancellationRequested) { _space.Release(); return; }
                i = _nextIn++;
                _inFlight++;
                _maxInFlight = Math.Max(_maxInFlight, _inFlight);
            }
            T value;
            try { value = _produce(i, token); }
            catch (OperationCanceledException) when (token.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                lock (_lock)
                {
                    if (_failure is null || i < _failure.Value.Item) _failure = (i, e);
                    Monitor.PulseAll(_lock);
                }
                _cts.Cancel(); // stop producing after a failure
                return;
            }
            lock (_lock)
            {
                _done[i] = value;
                Monitor.PulseAll(_lock);
            }
        }
    }

    /// <summary>The next item in index order, waiting for it; false at the end. Items before a failed one are still handed out, then the failure is thrown.</summary>
    public bool TryTake(out T item)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        item = default!;
        if (_nextOut >= _count) return false;
        T? r;
        lock (_lock)
        {
            while (!_done.TryGetValue(_nextOut, out r))
            {
                // the item will never come: it failed, comes after a failure, or its producer was stopped by one
                if (_failure is { } f && (_nextOut >= f.Item || _liveWorkers == 0)) throw new BackgroundWorkException(f.Item, f.Error);
                if (_liveWorkers == 0) throw new InvalidOperationException($"BackgroundQueue: item {_nextOut} was never produced (workers stopped).");
                Monitor.Wait(_lock);
            }
            _done.Remove(_nextOut);
            _inFlight--;
        }
        _nextOut++;
        _space.Release();
        item = r!;
        return true;
    }

    public IEnumerable<T> Items()
    {
        while (TryTake(out var item)) yield return item;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _cts.Cancel();
        foreach (var t in _threads) t.Join();
        lock (_lock)
        {
            foreach (var value in _done.Values) (value as IDisposable)?.Dispose();
            _done.Clear();
        }
        _cts.Dispose();
        _space.Dispose();
    }
}
