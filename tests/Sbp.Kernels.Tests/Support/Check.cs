namespace Sbp.Kernels.Tests.Support;

/// <summary>Element-wise comparisons with the first mismatches in the failure message.</summary>
public static class Check
{
    /// <summary>|actual - expected| &lt;= atol + rtol |expected| everywhere; NaN only where expected is NaN.</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rtol, double atol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        var bad = new List<string>();
        int count = 0;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            bool ok = double.IsNaN(e) ? double.IsNaN(a) : !double.IsNaN(a) && Math.Abs(a - e) <= atol + rtol * Math.Abs(e);
            if (ok) continue;
            count++;
            worst = Math.Max(worst, Math.Abs(a - e));
            if (bad.Count < 8) bad.Add($"[{i}] expected {e:R}, got {a:R}");
        }
        Assert.That(count, Is.Zero,
            $"{what}: {count} of {expected.Length} elements differ (rtol {rtol}, atol {atol}, worst |diff| {worst:G4}): {string.Join("; ", bad)}");
    }

    /// <summary>Bit-for-bit equality.</summary>
    public static void Exact(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        var bad = new List<string>();
        int count = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) continue;
            count++;
            if (bad.Count < 8) bad.Add($"[{i}] expected {expected[i]:R}, got {actual[i]:R}");
        }
        Assert.That(count, Is.Zero, $"{what}: {count} of {expected.Length} elements differ bitwise: {string.Join("; ", bad)}");
    }
}
