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

    /// <summary>An op's output in <paramref name="like"/>'s floating type (16-bit for a GEMM on 16-bit operands).</summary>
    static Tensor NewOfType(string op, Shape shape, Tensor like) => Tensor.Empty(op, shape, like.Device, like.DType);

    /// <summary>The operands of a GEMM op: one floating type, Float32 or 16-bit (Float32 accumulation, a 16-bit output), on one device.</summary>
    static void CheckGemmOperands(string op, Tensor a, Tensor b)
    {
        CheckAlive(op, a, "first input");
        CheckAlive(op, b, "second input");
        if (!a.DType.Is16Bit() && !b.DType.Is16Bit())
        {
            CheckFloats(op, a, b);
            return;
        }
        if (a.DType != b.DType)
            throw new ArgumentException($"{op}: got {a.DType} {a.Shape} and {b.DType} {b.Shape}; 16-bit operands must share one type: " +
                "cast one with Ops.To, or run the op inside Autocast.Begin(...), which casts both.");
        CheckDevices(op, a, b);
    }

    /// <summary>
    /// A GEMM op under autocast (matmul, linear): its floating inputs rounded to <paramref name="low"/> (a parameter's cast
    /// cached, see <see cref="Autocast"/>) and <paramref name="op16"/> run on them as they are: the backend's GEMM on 16-bit
    /// operands (cuBLAS GemmEx on CUDA) accumulates in Float32 and writes the 16-bit output; the op saves the 16-bit inputs.
    /// <para><paramref name="floatWeight"/>: the input that is a linear op's weight; a Float32 parameter there stays Float32 where the
    /// backend rounds GEMM operands as it reads them (<see cref="Backends.IBackend.RoundsGemmOperands"/>): the same bits, no
    /// cast, and no 16-bit copy held for backward.</para>
    /// </summary>
    static Tensor AutocastGemm(DType low, Tensor?[] inputs, Func<Tensor?[], Tensor> op16, int floatWeight = -1)
    {
        Autocast.NextOp();
        var lowered = inputs.Select((t, i) => t is not { DType: DType.Float32 or DType.BFloat16 or DType.Float16, IsDisposed: false } ? t
            : i == floatWeight && t is { IsLeaf: true, RequiresGrad: true, DType: DType.Float32 } && t.Backend.RoundsGemmOperands ? t
            : Autocast.Lower(t, low)).ToArray();
        using (Autocast.Suspend()) return op16(lowered);
    }

    /// <summary>Outside autocast 16-bit tensors are storage: ops compute on Float32 and say how to get there.</summary>
    static ArgumentException SixteenBit(string op, Tensor t) =>
        new($"{op}: got a {t.DType} tensor {t.Shape}; outside autocast ops compute on Float32: cast it first with Ops.To(x, DType.Float32) " +
            "(or x.To(DType.Float32)), or run the op inside Autocast.Begin(...).");

    /// <summary>Autocast's Float32 policy applies: autocast is on and an input is 16-bit.</summary>
    static bool AutocastWidens(params ReadOnlySpan<Tensor?> inputs)
    {
        foreach (var t in inputs) if (Autocast16(t)) return true;
        return false;
    }

    /// <summary>Autocast is on and <paramref name="t"/> is a live 16-bit tensor (an op may then read it as it is).</summary>
    static bool Autocast16(Tensor? t) => Autocast.Type is not null && t is { IsDisposed: false } && t.DType.Is16Bit();

    /// <summary>
    /// The input check of an op that reads a 16-bit input under autocast itself (<paramref name="sixteen"/>): alive then,
    /// else Float32.
    /// </summary>
    static void CheckFloatOrAutocast16(string op, Tensor t, bool sixteen, string role = "input")
    {
        if (sixteen) CheckAlive(op, t, role);
        else CheckFloat(op, t, role);
    }

    /// <summary>
    /// Autocast's Float32 policy: <paramref name="op"/> run on the inputs with each 16-bit one replaced by its exact
    /// widening (a recorded cast; an op that saves it holds the 16-bit tensor, see <see cref="Autocast"/>).
    /// </summary>
    static Tensor Widening(Tensor?[] inputs, Func<Tensor?[], Tensor> op)
    {
        var wide = (Tensor?[])inputs.Clone();
        try
        {
            for (int i = 0; i < wide.Length; i++)
                if (wide[i] is { } t && t.DType.Is16Bit()) wide[i] = To(t, DType.Float32);
            return op(wide);
        }
        finally
        {
            for (int i = 0; i < wide.Length; i++)
                if (!ReferenceEquals(wide[i], inputs[i])) wide[i]!.Dispose();
        }
    }

    /// <summary>
    /// A lower-precision op under autocast: its floating inputs rounded to <paramref name="low"/> (a parameter's cast
    /// cached, see <see cref="Autocast"/>), <paramref name="float32Op"/> run on their exact widenings (Float32
    /// accumulation, autocast suspended) and the output rounded to <paramref name="low"/>. Null inputs and Int32 ones pass through.
    /// Used where no kernel takes the 16-bit operands (matmul with a 1-D or broadcast operand).
    /// </summary>
    static Tensor AutocastLow(string op, DType low, Tensor?[] inputs, Func<Tensor?[], Tensor> float32Op)
    {
        var wide = new Tensor?[inputs.Length];
        Autocast.NextOp();
        try
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                if (inputs[i] is not { } t) continue;
                CheckAlive(op, t, "input");
                int same = Array.FindIndex(inputs, 0, i, u => ReferenceEquals(u, t));
                if (same >= 0 || !t.DType.IsFloating())
                {
                    wide[i] = same >= 0 ? wide[same] : t;   // one tensor given twice: one cast
                    continue;
                }
                wide[i] = To(Autocast.Lower(t, low), DType.Float32);
            }
            // What the Float32 body saves besides its (exact) inputs is held in the 16-bit type too, as a 16-bit op would have
            // saved it; the forward keeps the Float32 values.
            Tensor y;
            using (Autocast.Suspend())
            using (Tape.SaveActivationsAs(low))
                y = float32Op(wide);
            using (y) return To(y, low);
        }
        finally
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                bool repeated = Array.FindIndex(inputs, 0, i, u => ReferenceEquals(u, inputs[i])) >= 0;
                if (!repeated && wide[i] is { } w && !ReferenceEquals(w, inputs[i])) w.Dispose();
            }
        }
    }

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

    /// <summary>
    /// Operands all Float32 (each named by its role when it is not), or all of the first one's 16-bit type (autocast rounds
    /// them all), where the role <paramref name="float32Beside16"/> may also stay Float32. Absent operands are skipped.
    /// </summary>
    static void CheckOperandTypes(string op, (Tensor? Tensor, string Role)[] operands, string? float32Beside16 = null)
    {
        var (first, firstRole) = operands[0];
        CheckAlive(op, first!, firstRole);
        foreach (var (t, role) in operands)
        {
            if (t is null) continue;
            CheckAlive(op, t, role);
            if (!first!.DType.Is16Bit()) CheckFloat(op, t, role);
            else if (t.DType != first.DType && !(role == float32Beside16 && t.DType == DType.Float32))
                throw new ArgumentException($"{op}: the {firstRole} is {first.DType} {first.Shape} but the {role} is {t.DType} {t.Shape}; 16-bit operands " +
                    $"must share one type{(float32Beside16 is null ? "" : $" (the {float32Beside16} that type or Float32)")}: cast with Ops.To, or run the op inside " +
                    "Autocast.Begin(...), which casts them all.");
        }
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
