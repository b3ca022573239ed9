using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// Mixed precision as PyTorch's autocast. Inside <see cref="Begin"/> (BFloat16 or Float16):
/// <list type="bullet">
/// <item>matmul, linear, convolutions and attention take their floating inputs rounded to the 16-bit type,
/// accumulate in Float32 and give a 16-bit output (policy lower_precision_fp). Matmul and linear run the backend's GEMM
/// on the 16-bit operands (cuBLAS GemmEx on CUDA) and save them; their backward GEMMs read the gradient rounded to the
/// 16-bit type, as PyTorch's do.</item>
/// <item>every other op given a 16-bit input computes on its exact Float32 widening and gives Float32 (PyTorch's fp32
/// policy, applied here to the ops PyTorch leaves in the input's type too: this engine computes in Float32, so a
/// 16-bit result would only add a rounding). Mixed inputs therefore promote to Float32, as PyTorch's promote rule.
/// Copies that keep the last axis whole (permute, slice) move 16-bit tensors as they are.</item>
/// </list>
/// Parameters stay Float32 (leaves that require grad): each one's 16-bit copy is made once per tape and reused until
/// the outermost scope ends. Gradients are Float32 throughout: those of 16-bit tensors are kept and summed in Float32
/// (PyTorch rounds them to the tensor's type). What the tape saves is 16-bit where the op's input is 16-bit: an op
/// saving the widening of a 16-bit tensor holds the 16-bit tensor instead (exact). Wrap the forward pass and the loss,
/// not backward or the optimizer step.
/// <code>using (Autocast.Begin(DType.BFloat16)) loss = Ops.CrossEntropy(model.Forward(x), labels);</code>
/// </summary>
public static class Autocast
{
    [ThreadStatic] static DType _type;          // Float32: off
    [ThreadStatic] static int _depth;
    [ThreadStatic] static int _suspended;
    [ThreadStatic] static Dictionary<Tensor, CachedCast>? _cache;

    // activation casts of the op running now and of the one before it (see Lower)
    [ThreadStatic] static List<(Tensor Source, CachedCast Cast)>? _thisOp, _lastOp;

    // Drops: the tape's count of dropped nodes when the cast was made (a region that runs its body again drops the first
    // run's nodes, the casts' included: a cast made before is no longer on the tape)
    sealed record CachedCast(Tensor Cast, Tape? Tape, bool Recording, int Drops);

    /// <summary>The 16-bit type ops run in now; null outside autocast (or inside a Float32 scope).</summary>
    public static DType? Type => _type.Is16Bit() && _suspended == 0 ? _type : null;

    /// <summary>
    /// Until the returned scope is disposed, ops follow the autocast policy with <paramref name="dtype"/> (BFloat16 or
    /// Float16); Float32 turns autocast off inside (PyTorch's <c>autocast(enabled=False)</c>). Scopes nest.
    /// </summary>
    public static Scope Begin(DType dtype = DType.BFloat16)
    {
        if (dtype != DType.Float32 && !dtype.Is16Bit())
            throw new ArgumentException($"Autocast.Begin: autocast runs in BFloat16 or Float16 (Float32 turns it off), not {dtype}.", nameof(dtype));
        var scope = new Scope(_type);
        _type = dtype;
        _depth++;
        return scope;
    }

    /// <summary>Ends a <see cref="Begin"/> scope (once); the outermost one drops the parameter casts.</summary>
    public sealed class Scope : IDisposable
    {
        readonly DType _previous;
        bool _disposed;

        internal Scope(DType previous) => _previous = previous;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _type = _previous;
            if (--_depth == 0) ClearCache();
        }
    }

    /// <summary>Ops run as written (Float32) until disposed: the Float32 body of a lower-precision op.</summary>
    internal static SuspendScope Suspend()
    {
        _suspended++;
        return new SuspendScope();
    }

    internal readonly struct SuspendScope : IDisposable
    {
        public void Dispose() => _suspended--;
    }

    /// <summary>
    /// <paramref name="body"/> bound to the autocast state of now: a region body re-run in backward (recompute,
    /// checkpoint) computes the forward it recomputes in the same precision, as PyTorch's checkpoint restores autocast.
    /// </summary>
    public static Func<Tensor, Tensor> Keeping(Func<Tensor, Tensor> body)
    {
        var type = Type ?? DType.Float32;
        return x =>
        {
            using (Begin(type)) return body(x);
        };
    }

    /// <summary>
    /// A lower-precision op begins: the activation casts of the op before the last one are dropped, so an activation read
    /// by consecutive ops (Swin's q and k/v projections of one input) is cast and saved once, and casts live two ops at most.
    /// </summary>
    internal static void NextOp()
    {
        foreach (var (_, c) in _lastOp ?? []) c.Cast.Dispose();
        (_lastOp, _thisOp) = (_thisOp, _lastOp);
        _thisOp?.Clear();
    }

    /// <summary>
    /// x rounded to <paramref name="dtype"/> for a lower-precision op (recorded cast). A Float32 parameter's cast is
    /// cached until the outermost scope ends, an activation's for this op and the next (<see cref="NextOp"/>). The caller
    /// must not dispose the result.
    /// </summary>
    internal static Tensor Lower(Tensor x, DType dtype)
    {
        if (x.DType == dtype) return x;
        bool parameter = x.IsLeaf && x.RequiresGrad && x.DType == DType.Float32;
        var key = new CachedCast(x, Tape.Current, Tape.IsRecording([x]), Tape.Current?.Drops ?? 0);   // Cast = the source here: the key's other fields
        if (parameter && _cache is not null && _cache.TryGetValue(x, out var hit) && Fits(hit, key, dtype)) return hit.Cast;
        _thisOp ??= [];
        if (!parameter)
        {
            int here = _thisOp.FindIndex(e => ReferenceEquals(e.Source, x) && Fits(e.Cast, key, dtype));
            if (here >= 0) return _thisOp[here].Cast.Cast;
            int before = _lastOp?.FindIndex(e => ReferenceEquals(e.Source, x) && Fits(e.Cast, key, dtype)) ?? -1;
            if (before >= 0)
            {
                var kept = _lastOp![before];
                _lastOp.RemoveAt(before);
                _thisOp.Add(kept);
                return kept.Cast.Cast;
            }
        }
        var cast = Ops.To(x, dtype).DetachFromScope();
        var entry = key with { Cast = cast };
        if (parameter)
        {
            _cache ??= new(ReferenceEqualityComparer.Instance);
            if (_cache.Remove(x, out var stale)) stale.Cast.Dispose();
            _cache[x] = entry;
        }
        else _thisOp.Add((x, entry));
        return cast;
    }

    static bool Fits(CachedCast hit, CachedCast key, DType dtype) =>
        !hit.Cast.IsDisposed && hit.Cast.DType == dtype && hit.Tape == key.Tape && hit.Recording == key.Recording && hit.Drops == key.Drops;

    static void ClearCache()
    {
        NextOp();
        NextOp();
        if (_cache is null) return;
        foreach (var c in _cache.Values) c.Cast.Dispose();
        _cache.Clear();
    }
}
