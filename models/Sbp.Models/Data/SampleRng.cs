using Sbp.Rng;

namespace Sbp.Models.Data;

/// <summary>
/// A small deterministic random stream for data generation and augmentation: Philox blocks under a
/// 64-bit key, read in order. The key is derived from (seed, purpose, split, index), so sample i of a
/// split is the same on every run, thread and worker count.
/// </summary>
public sealed class SampleRng
{
    readonly ulong _key;
    ulong _block;
    uint _w0, _w1, _w2, _w3;
    int _used = 4;

    public SampleRng(ulong key) => _key = key;

    /// <summary>The stream for one sample: key mixed from the seed, a purpose name, and indices.</summary>
    public static SampleRng For(ulong seed, string purpose, long a, long b = 0)
    {
        ulong h = 0xCBF29CE484222325UL; // FNV-1a of the purpose
        foreach (char c in purpose) { h ^= c; h *= 0x100000001B3UL; }
        return new SampleRng(Mix(Mix(Mix(seed ^ h) ^ (ulong)a) + (ulong)b * 0x9E3779B97F4A7C15UL));
    }

    /// <summary>An independent stream derived from this one's key (the parent stream is not advanced).</summary>
    public SampleRng Fork(long stream) => new(Mix(_key ^ Mix((ulong)stream + 0xD1B54A32D192ED03UL)));

    public uint NextBits()
    {
        if (_used == 4)
        {
            (_w0, _w1, _w2, _w3) = Philox.Block((uint)_block, (uint)(_block >> 32), 0, 0, (uint)_key, (uint)(_key >> 32));
            _block++;
            _used = 0;
        }
        return _used++ switch { 0 => _w0, 1 => _w1, 2 => _w2, _ => _w3 };
    }

    /// <summary>Uniform in [0, 1).</summary>
    public float Uniform() => Philox.Uniform(NextBits());

    /// <summary>Uniform in [low, high).</summary>
    public float Uniform(float low, float high) => low + (high - low) * Uniform();

    /// <summary>Uniform integer in [0, n).</summary>
    public int Int(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"SampleRng.Int: n must be > 0 (got {n}).");
        return (int)((ulong)NextBits() * (ulong)n >> 32);
    }

    public bool Bernoulli(float p) => Uniform() < p;

    /// <summary>Standard normal (Box-Muller).</summary>
    public float Normal()
    {
        double u1 = 1.0 - Uniform(), u2 = Uniform();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>A Fisher-Yates permutation of 0..n-1.</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = Int(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
