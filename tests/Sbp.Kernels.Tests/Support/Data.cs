namespace Sbp.Kernels.Tests.Support;

/// <summary>Seeded random inputs (System.Random with a fixed seed: every run sees the same numbers).</summary>
public static class Data
{
    public static float[] Uniform(int seed, int n, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * r.NextDouble());
        return a;
    }

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

    /// <summary>k distinct values of 0..n-1 in random order (SBP kept positions are distinct).</summary>
    public static int[] Distinct(int seed, int n, int k)
    {
        var all = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(all);
        return all[..k];
    }

    /// <summary>k values of 0..n-1, repeats allowed.</summary>
    public static int[] Indices(int seed, int n, int k)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, k).Select(_ => r.Next(n)).ToArray();
    }
}
