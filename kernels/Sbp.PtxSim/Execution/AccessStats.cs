namespace Sbp.PtxSim.Execution;

/// <summary>Per-warp-request memory statistics: 32-byte sectors (coalescing) and shared-memory bank wavefronts.</summary>
internal static class AccessStats
{
    /// <summary>Distinct values among the sector indices (sorts in place).</summary>
    public static int DistinctSectors(Span<ulong> sectors)
    {
        if (sectors.Length == 0) return 0;
        sectors.Sort();
        int n = 1;
        for (int k = 1; k < sectors.Length; k++)
            if (sectors[k] != sectors[k - 1]) n++;
        return n;
    }

    /// <summary>
    /// Wavefronts for one shared request: lanes are served in phases of 128 bytes (32 lanes for accesses up to 4
    /// bytes, 16 for 8-byte, 8 for 16-byte accesses); within a phase, the wavefronts are the largest number of
    /// distinct 4-byte words that fall into one of the 32 banks (the same word is broadcast). Returns
    /// (wavefronts, phases with an active lane): their difference is the bank-conflict count.
    /// </summary>
    public static (int Wavefronts, int Phases) SharedWavefronts(ReadOnlySpan<uint> laneAddress, uint active, int size)
    {
        int lanesPerPhase = size <= 4 ? 32 : 128 / size;
        int wordsPerLane = Math.Max(1, size / 4);
        Span<uint> words = stackalloc uint[128];
        Span<int> perBank = stackalloc int[32];
        int total = 0, phases = 0;
        for (int p0 = 0; p0 < 32; p0 += lanesPerPhase)
        {
            int nw = 0;
            perBank.Clear();
            int worst = 0;
            for (int l = p0; l < p0 + lanesPerPhase; l++)
            {
                if ((active & (1u << l)) == 0) continue;
                uint w0 = laneAddress[l] >> 2;
                for (int k = 0; k < wordsPerLane; k++)
                {
                    uint word = w0 + (uint)k;
                    bool seen = false;
                    for (int j = 0; j < nw; j++)
                        if (words[j] == word) { seen = true; break; }
                    if (seen) continue;
                    words[nw++] = word;
                    int c = ++perBank[(int)(word & 31)];
                    if (c > worst) worst = c;
                }
            }
            if (nw == 0) continue;
            phases++;
            total += worst;
        }
        return (total, phases);
    }
}
