using System.Numerics;

namespace Sbp.PtxSim.Execution;

/// <summary>
/// The seeded orders a GPU does not promise: blocks run in a seeded permutation of the grid, the warps of a block in a
/// fresh seeded order after every barrier, and the lanes of one atom / red instruction in a seeded order. The stream
/// is keyed by (seed, launch number), so one launch is reproducible, while repeating a launch on the same simulator
/// may sum float atomics in another order, as on a GPU.
/// </summary>
internal sealed partial class Machine
{
    /// <summary>The simulator's seed: also keys the .approx errors (<see cref="Approx"/>), which do not depend on the launch.</summary>
    public readonly ulong Seed;

    private ulong _stream;
    private readonly int[] _warpOrder;

    /// <summary>The next value of the launch's SplitMix64 stream.</summary>
    public ulong NextRandom() => Approx.Mix(_stream += 0x9E3779B97F4A7C15UL);

    /// <summary>Writes the lanes of exec into order in a seeded random order and returns how many there are.</summary>
    public int LaneOrder(uint exec, Span<int> order)
    {
        int n = 0;
        for (uint k = exec; k != 0; k &= k - 1) order[n++] = BitOperations.TrailingZeroCount(k);
        Shuffle(order[..n]);
        return n;
    }

    private void ShuffleWarps() => Shuffle(_warpOrder);

    /// <summary>Fisher-Yates with the launch's stream.</summary>
    private void Shuffle(Span<int> items)
    {
        for (int j = items.Length - 1; j > 0; j--)
        {
            int s = (int)(NextRandom() % (ulong)(j + 1));
            (items[j], items[s]) = (items[s], items[j]);
        }
    }

    /// <summary>
    /// A seeded bijection of [0, n): a four-round Feistel network over the smallest even power of two >= n, walking
    /// the cycle until the value falls below n. Needs no table, so huge grids cost nothing.
    /// </summary>
    internal readonly struct Permutation
    {
        private readonly ulong _n, _key, _mask;
        private readonly int _half;

        public Permutation(ulong n, ulong key)
        {
            _n = n;
            _key = key;
            int bits = 64 - BitOperations.LeadingZeroCount(Math.Max(n - 1, 1UL));
            _half = (bits + 1) / 2;
            _mask = (1UL << _half) - 1;
        }

        public ulong this[ulong i]
        {
            get
            {
                ulong x = i;
                do x = Encrypt(x);
                while (x >= _n);
                return x;
            }
        }

        private ulong Encrypt(ulong x)
        {
            ulong l = x >> _half, r = x & _mask;
            for (ulong round = 1; round <= 4; round++)
            {
                ulong t = l ^ (Approx.Mix(_key ^ (round << 56) ^ r) & _mask);
                l = r;
                r = t;
            }
            return (l << _half) | r;
        }
    }
}
