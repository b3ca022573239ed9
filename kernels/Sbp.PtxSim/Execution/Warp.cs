namespace Sbp.PtxSim.Execution;

/// <summary>
/// One warp's state: a structure-of-arrays register file (slot s of lane l at R[s * 32 + l], 32- and 64-bit values
/// and predicates all as ulong; 32-bit values keep the upper half zero), per-lane PCs and lane masks.
/// While <see cref="Uniform"/>, every runnable lane is at <see cref="Pc"/> and <see cref="LanePc"/> is stale for them.
/// </summary>
internal sealed class Warp(int index, int slots)
{
    public readonly int Index = index;        // warp index within the block
    public readonly ulong[] R = new ulong[slots * 32];
    public readonly int[] LanePc = new int[32];
    public uint Valid;                        // lanes that exist (partial last warp)
    public uint Exited;
    public uint Waiting;                      // lanes blocked at a barrier
    public bool Uniform;
    public int Pc;

    public uint Runnable => Valid & ~Exited & ~Waiting;

    /// <summary>Materialises the uniform PC into LanePc (before lanes start to differ).</summary>
    public void Diverge()
    {
        if (!Uniform) return;
        uint m = Runnable;
        while (m != 0)
        {
            int l = System.Numerics.BitOperations.TrailingZeroCount(m);
            m &= m - 1;
            LanePc[l] = Pc;
        }
        Uniform = false;
    }
}
