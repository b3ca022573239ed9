namespace Sbp.Rng;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator. Output block i is a pure function of (key, counter i), so any thread,
/// the CPU or a GPU kernel, produces the same numbers for the same element without shared state.
/// </summary>
public static class Philox
{
    const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four 32-bit words of block (c0, c1, c2, c3) under key (k0, k1).</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
            k0 += W0;
            k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>Word <c>index % 4</c> of block <c>index / 4</c> of a stream: the 32 random bits of element index.</summary>
    public static uint Bits(ulong key, ulong index)
    {
        ulong block = index >> 2;
        var (a, b, c, d) = Block((uint)block, (uint)(block >> 32), 0, 0, (uint)key, (uint)(key >> 32));
        return (index & 3) switch { 0 => a, 1 => b, 2 => c, _ => d };
    }

    /// <summary>Uniform in [0, 1) with 24 random bits (exactly representable in float32).</summary>
    public static float Uniform(uint bits) => (bits >> 8) * (1f / 16777216f);
}
