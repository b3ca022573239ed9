namespace Sbp.Models.Training;

/// <summary>Classification and detection metrics on host arrays of logits (row-major [rows, classes]).</summary>
public static class Metrics
{
    /// <summary>How many rows have their label among the k highest logits (ties: a higher logit must beat the label's).</summary>
    public static int TopKHits(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, int k)
    {
        int hits = 0;
        for (int r = 0; r < labels.Length; r++)
        {
            var row = logits.Slice(r * classes, classes);
            float own = row[labels[r]];
            int above = 0;
            foreach (var v in row) if (v > own) above++;
            if (above < k) hits++;
        }
        return hits;
    }

    /// <summary>Adds each row's (label, highest logit) to <paramref name="confusion"/> [true, predicted] (ties: the lowest class).</summary>
    public static void AddConfusion(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, long[,] confusion)
    {
        for (int r = 0; r < labels.Length; r++)
        {
            var row = logits.Slice(r * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            confusion[labels[r], best]++;
        }
    }

    /// <summary>
    /// Mean over classes (skipping <paramref name="skipClass"/>, e.g. background, and classes with no
    /// positive) of the average precision of ranking rows by that class's score: the mean of the
    /// precision at each positive's rank (the THUMOS per-frame mAP).
    /// </summary>
    public static double MeanAveragePrecision(ReadOnlySpan<float> scores, ReadOnlySpan<int> labels, int classes, int skipClass = 0)
    {
        double sum = 0;
        int counted = 0;
        var order = new int[labels.Length];
        var column = new float[labels.Length];
        for (int c = 0; c < classes; c++)
        {
            if (c == skipClass) continue;
            int positives = 0;
            for (int r = 0; r < labels.Length; r++)
            {
                column[r] = scores[r * classes + c];
                order[r] = r;
                if (labels[r] == c) positives++;
            }
            if (positives == 0) continue;
            var keys = (float[])column.Clone();
            Array.Sort(keys, order);   // ascending; walk from the end
            double ap = 0;
            int seen = 0, hits = 0;
            for (int i = order.Length - 1; i >= 0; i--)
            {
                seen++;
                if (labels[order[i]] != c) continue;
                hits++;
                ap += (double)hits / seen;
            }
            sum += ap / positives;
            counted++;
        }
        return counted == 0 ? 0 : sum / counted;
    }
}
