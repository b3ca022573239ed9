using Sbp.Tensors;

namespace Sbp.Autograd;

// Recording on and off: NoGrad scopes, recording again inside backward, and the gradient probe.
public sealed partial class Tape
{
    [ThreadStatic] static GradProbe? _probe;

    /// <summary>False inside <see cref="NoGrad"/>.</summary>
    public static bool IsGradEnabled => _noGradDepth == 0;

    /// <summary>Nothing is recorded until the returned scope ends (optimizer steps, evaluation).</summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope(true);
    }

    /// <summary>Ends a <see cref="NoGrad"/> scope; a default-constructed one does nothing.</summary>
    public readonly struct NoGradScope(bool opened) : IDisposable
    {
        public void Dispose()
        {
            if (opened) _noGradDepth--;
        }
    }

    [ThreadStatic] static DType? _saveAs;

    /// <summary>The type activations are saved in for backward inside <see cref="SaveActivationsAs"/>; null: as computed (Float32).</summary>
    public static DType? SavedActivationType => _saveAs;

    /// <summary>
    /// Until the scope ends, the Float32 activations ops save for backward are held as <paramref name="dtype"/>
    /// (BFloat16 or Float16: half the bytes) and widened when backward reads them, as PyTorch's saved-tensor
    /// hooks do with a cast in pack and unpack. Parameters are not copied; an activation saved by several ops is
    /// held once; inside an SBP region the kept positions are packed when the region ends; batch norm and the losses
    /// keep theirs in Float32 (as autocast runs them in float32), layer norm recomputes its statistics from the rounded input. The forward still
    /// computes in Float32, so only backward sees the rounded values (relative error 2^-9 for bfloat16).
    /// </summary>
    public static SaveAsScope SaveActivationsAs(DType dtype)
    {
        if (!dtype.Is16Bit()) throw new ArgumentException($"Tape.SaveActivationsAs: activations are packed as BFloat16 or Float16, not {dtype}.", nameof(dtype));
        var scope = new SaveAsScope(_saveAs);
        _saveAs = dtype;
        return scope;
    }

    /// <summary>Ends a <see cref="SaveActivationsAs"/> scope (the type before it applies again).</summary>
    public readonly struct SaveAsScope(DType? previous) : IDisposable
    {
        public void Dispose() => _saveAs = previous;
    }

    /// <summary>
    /// <paramref name="wide"/> is the exact Float32 widening of the 16-bit <paramref name="narrow"/> (a recorded cast):
    /// a node recorded on the current tape that saves it holds <paramref name="narrow"/>'s memory instead (autocast).
    /// </summary>
    internal static void NoteExactWidening(Tensor narrow, Tensor wide)
    {
        if (_current is { _state: State.Recording } tape && wide.Producer is not null) tape._store.NoteNarrow(wide.Block, narrow.Block, narrow.DType);
    }

    /// <summary>Packs the saved activations of the nodes recorded from <paramref name="from"/> on (an SBP region that ended).</summary>
    internal void PackSavedFrom(int from, DType? dtype)
    {
        for (int i = from; i < _nodes.Count; i++)
            if ((dtype ?? _nodes[i].PackAs) is { } packAs) _store.Pack(_nodes[i], packAs);
    }

    /// <summary>Whether a node from <paramref name="from"/> on was recorded under <see cref="SaveActivationsAs"/> (and is packed when its region ends).</summary>
    internal bool PacksFrom(int from)
    {
        for (int i = from; i < _nodes.Count; i++) if (_nodes[i].PackAs is not null) return true;
        return false;
    }

    /// <summary>Recording on again inside backward (a region re-run builds its own tape), until disposed.</summary>
    internal static GradScope EnableGrad()
    {
        var scope = new GradScope(_noGradDepth);
        _noGradDepth = 0;
        return scope;
    }

    internal readonly struct GradScope(int depth) : IDisposable
    {
        public void Dispose() => _noGradDepth = depth;
    }

    /// <summary>
    /// Runs ops without recording (as <see cref="NoGrad"/>) while their outputs still require grad where an
    /// input does, so each op saves (and counts) what it would save when recording, and
    /// <see cref="GradProbe.WouldRecord"/> tells whether any op would have been recorded: a region that
    /// re-runs its body in backward learns from its first forward what full backprop would hold.
    /// </summary>
    internal static GradProbe Probe() => new();

    /// <summary>See <see cref="Probe"/>.</summary>
    internal sealed class GradProbe : IDisposable
    {
        readonly GradProbe? _previous = _probe;
        readonly NoGradScope _noGrad = NoGrad();
        readonly int _depth = _noGradDepth;   // ops of a NoGrad scope inside the probe are not probed

        public GradProbe() => _probe = this;

        /// <summary>True once an op ran with an input that requires grad (recording, it would have made a node).</summary>
        public bool WouldRecord { get; private set; }

        /// <summary>Called for an op not recorded: marks its output as requiring grad when an input does.</summary>
        internal static void OnNotRecorded(Tensor output, Tensor[] inputs)
        {
            if (_probe is not { } p || _noGradDepth != p._depth) return;
            foreach (var t in inputs)
                if (t.RequiresGrad)
                {
                    p.WouldRecord = true;
                    output.MarkWouldRequireGrad();
                    return;
                }
        }

        public void Dispose()
        {
            _noGrad.Dispose();
            _probe = _previous;
        }
    }
}
