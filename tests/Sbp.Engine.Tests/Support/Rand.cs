namespace Sbp.Engine.Tests.Support;

/// <summary>
/// Seeded test data (System.Random with a fixed seed, so every run sees the same numbers).
/// Each generator takes the seed first and the element count second.
/// </summary>
public static class Rand
{
    /// <summary>Uniform in [lo, hi).</summary>
    public static float[] Uniform(int seed, int n, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * r.NextDouble());
        return a;
    }

    /// <summary>Normal with mean 0 and the given standard deviation (Box-Muller).</summary>
    public static float[] Normal(int seed, int n, float std = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - r.NextDouble(), u2 = r.NextDouble();
            a[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
        }
        return a;
    }

    /// <summary>Uniform in [lo, hi) with lo &gt; 0: safe for log, sqrt, pow and as a divisor.</summary>
    public static float[] Positive(int seed, int n, float lo = 0.5f, float hi = 2f)
    {
        if (lo <= 0f) throw new ArgumentOutOfRangeException(nameof(lo), "Rand.Positive: lo must be > 0.");
        return Uniform(seed, n, lo, hi);
    }

    /// <summary>|x| uniform in [min, max) with a random sign: keeps away from the kink of relu and the pole of 1/x.</summary>
    public static float[] AwayFromZero(int seed, int n, float min = 0.1f, float max = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            float m = (float)(min + (max - min) * r.NextDouble());
            a[i] = r.Next(2) == 0 ? -m : m;
        }
        return a;
    }

    /// <summary>
    /// n distinct values in random order, any two at least 0.6 * spacing apart (a shuffled grid of
    /// step <paramref name="spacing"/>, centred on 0, jittered by up to ±0.2 * spacing). For max:
    /// no ties, and no tie appears under a finite-difference step below 0.3 * spacing.
    /// </summary>
    public static float[] Distinct(int seed, int n, float spacing = 0.1f)
    {
        var r = new Random(seed);
        var order = Enumerable.Range(0, n).ToArray();
        r.Shuffle(order);
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = (float)((order[i] - (n - 1) / 2.0) * spacing + (r.NextDouble() - 0.5) * 0.4 * spacing);
        return a;
    }

    /// <summary>Integers uniform in [lo, hi).</summary>
    public static int[] Ints(int seed, int n, int lo, int hi)
    {
        var r = new Random(seed);
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = r.Next(lo, hi);
        return a;
    }

    /// <summary>k distinct values of 0..n-1 in random order (e.g. SBP kept positions).</summary>
    public static int[] DistinctInts(int seed, int n, int k)
    {
        var all = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(all);
        return all[..k];
    }
}
