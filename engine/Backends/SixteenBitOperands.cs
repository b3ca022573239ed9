using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// How a backend without a 16-bit kernel serves 16-bit operands (autocast): each widened exactly into a Float32
/// temporary, the Float32 kernel run, and a 16-bit result rounded from a Float32 temporary. The same bits as a kernel
/// that converts where it reads and writes (the CPU's), at two more passes over memory.
/// </summary>
public static class SixteenBitOperands
{
    public static bool Any(params Tensor?[] tensors) => tensors.Any(t => t is not null && t.DType.Is16Bit());

    /// <summary>The exact Float32 widening of a 16-bit <paramref name="t"/> (a temporary), or null for a Float32 or absent one.</summary>
    public static Tensor? Widened(IBackend backend, Tensor? t)
    {
        if (t is null || !t.DType.Is16Bit()) return null;
        var wide = Float32Like(t)!;
        backend.Cast(t, wide);
        return wide;
    }

    /// <summary>A Float32 <paramref name="t"/> rounded in place to a 16-bit <paramref name="type"/> through a 16-bit temporary (nothing for Float32).</summary>
    public static void RoundInPlace(IBackend backend, DType type, Tensor t)
    {
        if (!type.Is16Bit()) return;
        using var narrow = Tensor.Empty(t.Shape, t.Device, type).DetachFromScope();
        backend.Cast(t, narrow);
        backend.Cast(narrow, t);
    }

    /// <summary>A Float32 temporary of a 16-bit <paramref name="t"/>'s shape, or null for a Float32 one.</summary>
    public static Tensor? Float32Like(Tensor? t) => t is null || !t.DType.Is16Bit() ? null : Tensor.Empty(t.Shape, t.Device).DetachFromScope();

    /// <summary><paramref name="run"/> on Float32 forms of x and y: x widened if 16-bit, y a Float32 temporary rounded into y after.</summary>
    public static void OnFloat32(IBackend backend, Tensor x, Tensor y, Action<Tensor, Tensor> run) =>
        OnFloat32(backend, [x], y, (inputs, y32) => run(inputs[0], y32));

    /// <summary><paramref name="run"/> on Float32 forms of the inputs (each 16-bit one widened) and of y (a Float32 temporary rounded into y after).</summary>
    public static void OnFloat32(IBackend backend, Tensor[] inputs, Tensor y, Action<Tensor[], Tensor> run)
    {
        var wide = inputs.Select(t => Widened(backend, t)).ToArray();
        try
        {
            using var y32 = Float32Like(y);
            run([.. inputs.Select((t, i) => wide[i] ?? t)], y32 ?? y);
            if (y32 is not null) backend.Cast(y32, y);
        }
        finally
        {
            foreach (var w in wide) w?.Dispose();
        }
    }
}
