namespace Sbp.PtxSim;

/// <summary>A grid or block shape (or a block / thread index), as in CUDA's dim3.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>X * Y * Z.</summary>
    public long Volume => (long)X * Y * Z;

    /// <summary>"(x,y,z)".</summary>
    public override string ToString() => $"({X},{Y},{Z})";
}
