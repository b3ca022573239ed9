using System.Globalization;

namespace Sbp.Models.Training;

/// <summary>
/// What <see cref="Trainer.Evaluate"/> measured on a held-out split: top-1 and top-5 (per frame for detection), per-frame
/// mAP for detection, and the confusion counts [true class, predicted class] of the top-1 predictions.
/// </summary>
public sealed record Evaluation(double Top1, double Top5, double? Map, long[,] Confusion)
{
    public int Classes => Confusion.GetLength(0);

    /// <summary>Rows whose true class is <paramref name="cls"/>.</summary>
    public long Support(int cls)
    {
        long n = 0;
        for (int p = 0; p < Classes; p++) n += Confusion[cls, p];
        return n;
    }

    /// <summary>The top-1 accuracy of class <paramref name="cls"/> (NaN when it has no row).</summary>
    public double ClassTop1(int cls) => Support(cls) is var n and > 0 ? (double)Confusion[cls, cls] / n : double.NaN;

    /// <summary>
    /// One line per class (top-1, hits of rows) and the most frequent confusions, e.g.
    /// "move right 93.8 % (30/32), ...; most confused: move left as move right 3, ...".
    /// </summary>
    public string PerClassSummary(IReadOnlyList<string> classNames, int confusions = 3)
    {
        string Name(int c) => c < classNames.Count ? classNames[c] : $"class {c}";
        var classes = Enumerable.Range(0, Classes).Where(c => Support(c) > 0)
            .Select(c => string.Create(CultureInfo.InvariantCulture, $"{Name(c)} {ClassTop1(c):P1} ({Confusion[c, c]}/{Support(c)})"));
        var mistakes = (from t in Enumerable.Range(0, Classes)
                        from p in Enumerable.Range(0, Classes)
                        where t != p && Confusion[t, p] > 0
                        orderby Confusion[t, p] descending, t, p
                        select $"{Name(t)} as {Name(p)} {Confusion[t, p]}").Take(confusions).ToList();
        return $"per class top-1: {string.Join(", ", classes)}; most confused: {(mistakes.Count == 0 ? "none" : string.Join(", ", mistakes))}";
    }
}
