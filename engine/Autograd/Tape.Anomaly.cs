using System.Text;
using Sbp.Tensors;

namespace Sbp.Autograd;

// Anomaly mode: NaN/Inf detection per op, forward and backward.
public sealed partial class Tape
{
    [ThreadStatic] static bool _anomaly;
    [ThreadStatic] static int _inBackwardRule;

    /// <summary>
    /// Anomaly mode on this thread: every Float32 op output (recorded or not) and every gradient a
    /// backward rule returns is checked for NaN/Inf, and the first bad one throws an
    /// <see cref="AnomalyException"/> naming the op. Off by default; when off it costs one
    /// thread-static bool test per op. When on, each check is one device reduction
    /// (<see cref="Backends.IBackend.SumOfSquares"/>, one scalar read back); the full tensor is
    /// copied to the host only to write the report. Prefer <see cref="DetectAnomalies"/>.
    /// </summary>
    public static bool AnomalyMode
    {
        get => _anomaly;
        set => _anomaly = value;
    }

    /// <summary>
    /// Turns anomaly mode on for this thread until the scope is disposed (then restores the previous setting).
    /// <code>
    /// using (Tape.DetectAnomalies()) { var loss = model(x); tape.Backward(loss); }
    /// </code>
    /// </summary>
    public static AnomalyScope DetectAnomalies(bool enabled = true)
    {
        var scope = new AnomalyScope(_anomaly, true);
        _anomaly = enabled;
        return scope;
    }

    /// <summary>Ends a <see cref="DetectAnomalies"/> scope; a default-constructed one does nothing.</summary>
    public readonly struct AnomalyScope(bool previous, bool opened) : IDisposable
    {
        public void Dispose()
        {
            if (opened) _anomaly = previous;
        }
    }

    /// <summary>True when every value of a Float32 tensor is finite: a finite sum of squares (in float64) implies it.</summary>
    static bool LooksFinite(Tensor t) =>
        t.DType != DType.Float32 || t.Numel == 0 || double.IsFinite(t.Backend.SumOfSquares(t));

    /// <summary>Forward check of an op's output; the output is disposed before the exception is thrown.</summary>
    static void CheckForward(string op, Tensor output, Tensor[] inputs)
    {
        // Ops run inside a backward rule are checked as that node's returned gradients.
        if (_inBackwardRule > 0 || LooksFinite(output)) return;
        var (nan, inf, first) = CountNonFinite(output);
        if (nan + inf == 0) return;   // the float32 partial sums of a device reduction overflowed: all finite
        var shapes = inputs.Select(t => t.Shape).ToArray();
        var region = Observer?.Name;
        var sb = new StringBuilder();
        sb.Append($"Anomaly in forward: op '{op}' produced {Describe(nan, inf)} in its output {output.Shape}; ");
        sb.Append($"first at index {first}{Coordinates(output.Shape, first)}. ");
        sb.Append($"Inputs: {FormatShapes(shapes)}");
        var badInputs = inputs.Select((t, i) => (t, i)).Where(p => !p.t.IsDisposed && !LooksFinite(p.t)).Select(p => p.i).ToList();
        sb.Append(badInputs.Count == 0 ? " (all finite)." : $"; input(s) {string.Join(", ", badInputs)} already hold NaN/Inf (made outside anomaly mode, or loaded data).");
        sb.Append(region is null ? " Not in an SBP region." : $" In SBP region '{region}'.");
        sb.Append(" Hint: ").Append(Hint(op, AnomalyPhase.Forward));
        output.Dispose();
        throw new AnomalyException(sb.ToString(), AnomalyPhase.Forward, op, shapes, output.Shape, null, nan, inf, first, region);
    }

    /// <summary>Backward check of the gradient a node's rule returned for input <paramref name="input"/>.</summary>
    static void CheckBackward(TapeNode node, int input, Tensor grad, Tensor outputGrad)
    {
        if (LooksFinite(grad)) return;
        var (nan, inf, first) = CountNonFinite(grad);
        if (nan + inf == 0) return;
        var sb = new StringBuilder();
        sb.Append($"Anomaly in backward: op '{node.Op}' (tape node #{node.Index}) returned a gradient for input {input} {grad.Shape} with {Describe(nan, inf)}; ");
        sb.Append($"first at index {first}{Coordinates(grad.Shape, first)}. ");
        sb.Append($"Inputs: {FormatShapes(node.InputShapes)}; output {node.OutputShape}");
        sb.Append(node.IsCompact ? " (compact: SBP kept positions only)" : "");
        sb.Append(LooksFinite(outputGrad) ? "; the incoming gradient is finite." : "; the incoming gradient is already non-finite.");
        sb.Append(node.Region is null ? " Not in an SBP region." : $" In SBP region '{node.Region}'.");
        sb.Append(" Hint: ").Append(Hint(node.Op, AnomalyPhase.Backward));
        throw new AnomalyException(sb.ToString(), AnomalyPhase.Backward, node.Op, node.InputShapes, grad.Shape, input, nan, inf, first, node.Region);
    }

    /// <summary>Exact counts and the first bad index, on the host (error path only).</summary>
    static (long NaN, long Inf, long First) CountNonFinite(Tensor t)
    {
        var values = t.ToArray();
        long nan = 0, inf = 0, first = -1;
        for (long i = 0; i < values.LongLength; i++)
        {
            float v = values[i];
            if (float.IsNaN(v)) nan++;
            else if (float.IsInfinity(v)) inf++;
            else continue;
            if (first < 0) first = i;
        }
        return (nan, inf, first);
    }

    static string Describe(long nan, long inf) => $"{nan + inf} non-finite value(s) ({nan} NaN, {inf} Inf)";

    static string FormatShapes(IEnumerable<Shape> shapes)
    {
        var s = string.Join(", ", shapes);
        return s.Length == 0 ? "none" : s;
    }

    static string Coordinates(Shape shape, long flat)
    {
        if (shape.Rank <= 1) return "";
        var c = new int[shape.Rank];
        for (int i = shape.Rank - 1; i >= 0; i--)
        {
            c[i] = (int)(flat % shape[i]);
            flat /= shape[i];
        }
        return $" (at [{string.Join(", ", c)}])";
    }

    static string Hint(string op, AnomalyPhase phase) => (op, phase) switch
    {
        ("log", AnomalyPhase.Forward) => "log of a value <= 0 (NaN below 0, -Inf at 0); clamp the input (Ops.Add(x, eps)) or use a log-space op (LogSoftmax, CrossEntropy).",
        ("log", AnomalyPhase.Backward) => "the gradient of log is g / x: an input at 0 gives Inf; add an epsilon to the input.",
        ("div" or "rdiv_scalar", AnomalyPhase.Forward) => "division by zero (x/0 = Inf, 0/0 = NaN); add an epsilon to the divisor.",
        ("div" or "rdiv_scalar", AnomalyPhase.Backward) => "the gradient of a / b divides by b^2: a divisor at or near 0 overflows; add an epsilon to the divisor.",
        ("sqrt", AnomalyPhase.Forward) => "sqrt of a negative value; clamp the input at 0.",
        ("sqrt", AnomalyPhase.Backward) => "the gradient of sqrt is g / (2 sqrt(x)): Inf at x = 0; use Sqrt(x + eps).",
        ("pow" or "pow_scalar", _) => "a power of a negative base (fractional exponent) or of 0 (negative exponent, or its gradient); clamp the base.",
        ("exp", _) => "exp overflows above ~88.7 in float32; subtract the maximum first (as softmax does) or lower the learning rate.",
        (_, AnomalyPhase.Forward) => "the inputs were finite, so this op overflowed or divided by zero; look at its inputs' range (learning rate too high, missing normalization, bad data).",
        _ => "a gradient overflowed here: lower the learning rate, clip gradients (GradClip), or check the op's inputs for values at the edge of its domain.",
    };
}
