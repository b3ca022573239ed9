namespace Sbp.Tensors;

/// <summary>Element types. Float32 for values; Int32 for indices (gather/scatter, labels).</summary>
public enum DType
{
    Float32,
    Int32,
}

public static class DTypeExtensions
{
    public static int Size(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Int32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
