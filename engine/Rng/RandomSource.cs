namespace Sbp.Rng;

/// <summary>
/// The engine's deterministic random source. A source is a 64-bit key plus a position; each random
/// op takes a <see cref="RandomStream"/> (the key and a fresh range of counters) and element i of
/// its output uses Philox bits (key, offset + i), so results do not depend on threading or device.
/// <see cref="Split(string)"/> derives an independent source, e.g. one per op or per data worker.
/// The whole state is (Seed, Position): save both to resume bit-exactly.
/// </summary>
public sealed class RandomSource
{
    public RandomSource(ulong seed, ulong position = 0)
    {
        Seed = seed;
        Position = position;
    }

    public ulong Seed { get; }

    /// <summary>Counters handed out so far.</summary>
    public ulong Position { get; private set; }

    /// <summary>Reserves <paramref name="count"/> counters (rounded up to whole Philox blocks) for one op.</summary>
    public RandomStream Take(long count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "RandomSource.Take: count must be >= 0.");
        var s = new RandomStream(Seed, Position);
        Position += ((ulong)count + 3) & ~3UL;
        return s;
    }

    /// <summary>An independent source whose seed is derived from this seed and a stream number.</summary>
    public RandomSource Split(ulong stream) => new(Mix(Seed ^ Mix(stream + 0x9E3779B97F4A7C15UL)));

    /// <summary>An independent source for a named purpose ("dropout", "data/worker3", ...).</summary>
    public RandomSource Split(string name)
    {
        ulong h = 0xCBF29CE484222325UL; // FNV-1a
        foreach (char c in name) { h ^= c; h *= 0x100000001B3UL; }
        return Split(h);
    }

    public float NextUniform() => Philox.Uniform(Philox.Bits(Seed, Take(1).Offset));

    /// <summary>Fills with uniform values in [low, high).</summary>
    public void Uniform(Span<float> destination, float low = 0f, float high = 1f) =>
        Take(destination.Length).Uniform(destination, low, high);

    /// <summary>Fills with normal values (Box-Muller over pairs of uniforms).</summary>
    public void Normal(Span<float> destination, float mean = 0f, float std = 1f) =>
        Take(2L * destination.Length).Normal(destination, mean, std);

    /// <summary>SplitMix64's finalizer: a bijective mix of 64 bits.</summary>
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public override string ToString() => $"RandomSource(seed {Seed}, position {Position})";
}

/// <summary>A key and a counter range reserved by one op; element i's bits are Philox(key, Offset + i).</summary>
public readonly record struct RandomStream(ulong Key, ulong Offset)
{
    public uint Bits(long index) => Philox.Bits(Key, Offset + (ulong)index);

    public float Uniform(long index) => Philox.Uniform(Bits(index));

    public void Uniform(Span<float> destination, float low = 0f, float high = 1f)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = low + (high - low) * Uniform(i);
    }

    /// <summary>Element i uses uniforms 2i and 2i+1.</summary>
    public void Normal(Span<float> destination, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            double u1 = Uniform(2L * i) + 1.0 / 33554432, u2 = Uniform(2L * i + 1); // u1 > 0 for the log
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            destination[i] = (float)(mean + std * r * Math.Cos(2 * Math.PI * u2));
        }
    }
}
