namespace Sbp.Tensors;

/// <summary>
/// Element types. Float32 for values; Int32 for indices (gather/scatter, labels); BFloat16 and Float16 are 16-bit
/// storage (casts with <see cref="Ops.To"/>, copies, views, safetensors): ops compute on Float32 and say so.
/// </summary>
public enum DType
{
    Float32,
    Int32,
    /// <summary>bfloat16: fp32's sign and 8 exponent bits, 7 mantissa bits (the upper half of a float).</summary>
    BFloat16,
    /// <summary>IEEE binary16: 5 exponent bits, 10 mantissa bits (max 65504).</summary>
    Float16,
}

public static class DTypeExtensions
{
    public static int Size(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Int32 => 4,
        DType.BFloat16 or DType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>Float32, BFloat16 or Float16: the types a cast converts between.</summary>
    public static bool IsFloating(this DType dtype) => dtype is DType.Float32 or DType.BFloat16 or DType.Float16;

    /// <summary>BFloat16 or Float16.</summary>
    public static bool Is16Bit(this DType dtype) => dtype is DType.BFloat16 or DType.Float16;
}
