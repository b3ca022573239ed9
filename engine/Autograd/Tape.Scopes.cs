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
