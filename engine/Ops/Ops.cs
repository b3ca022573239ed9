using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp;

/// <summary>
/// The functional API: every op of the engine, each with its forward and its backward rule side
/// by side (one file per family). Ops validate their inputs, allocate outputs from the device
/// pool, run the device backend and record themselves on the current <see cref="Tape"/> when an
/// input requires grad. Backward rules are written with the same ops (recording is off then).
/// </summary>
public static partial class Ops
{
    /// <summary>Allocates an op's output on the device of <paramref name="like"/>, labelled with the op.</summary>
    static Tensor New(string op, Shape shape, Tensor like)
    {
        if (like.DType.Is16Bit()) throw SixteenBit(op, like);
        return Tensor.Empty(op, shape, like.Device);
    }

    /// <summary>16-bit tensors are storage for now: ops compute on Float32 and say how to get there.</summary>
    static ArgumentException SixteenBit(string op, Tensor t) =>
        new($"{op}: got a {t.DType} tensor {t.Shape}; ops compute on Float32: cast it first with Ops.To(x, DType.Float32) (or x.To(DType.Float32)).");

    /// <summary>Runs a kernel that may reject its input (bad indices); the output is freed if it does.</summary>
    static void RunOrDispose(Tensor output, Action kernel)
    {
        try { kernel(); }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    static void CheckAlive(string op, Tensor t, string role)
    {
        if (t.IsDisposed) throw new ObjectDisposedException($"{op}: the {role} tensor {t.Shape} was disposed.");
    }

    static void CheckFloat(string op, Tensor t, string role = "input")
    {
        CheckAlive(op, t, role);
        if (t.DType.Is16Bit()) throw SixteenBit(op, t);
        if (t.DType != DType.Float32)
            throw new ArgumentException($"{op}: the {role} must be Float32, got {t.DType} {t.Shape}.");
    }

    static void CheckDevices(string op, Tensor a, Tensor b)
    {
        if (a.Device != b.Device)
            throw new ArgumentException($"{op}: inputs are on different devices ({a.Device} {a.Shape} and {b.Device} {b.Shape}); move one of them first.");
    }

    static void CheckFloats(string op, Tensor a, Tensor b)
    {
        CheckFloat(op, a, "first input");
        CheckFloat(op, b, "second input");
        CheckDevices(op, a, b);
    }

    /// <summary>
    /// The gradient of a broadcast operand: <paramref name="grad"/> summed down to
    /// <paramref name="shape"/>; the same tensor when no broadcasting happened.
    /// </summary>
    static Tensor GradTo(Tensor grad, Shape shape) => grad.Shape == shape ? grad : SumTo(grad, shape);
}
