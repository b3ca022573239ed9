using Sbp.Models.Training;

namespace Sbp.Models.Tests.Training;

public class MetricsTests
{
    [Test]
    public void TopKCountsRowsWhoseLabelIsAmongTheKHighest()
    {
        float[] logits =
        [
            0.1f, 0.9f, 0.0f,   // label 1: top-1
            0.5f, 0.2f, 0.3f,   // label 2: second
            0.2f, 0.3f, 0.1f,   // label 2: third
        ];
        int[] labels = [1, 2, 2];
        Assert.That(Metrics.TopKHits(logits, labels, 3, 1), Is.EqualTo(1));
        Assert.That(Metrics.TopKHits(logits, labels, 3, 2), Is.EqualTo(2));
        Assert.That(Metrics.TopKHits(logits, labels, 3, 3), Is.EqualTo(3));
    }

    [Test]
    public void ConfusionCountsTrueAgainstArgmaxAndTheSummaryNamesClassesAndMistakes()
    {
        float[] logits =
        [
            0.1f, 0.9f, 0.0f,   // label 1 -> 1
            0.5f, 0.2f, 0.3f,   // label 2 -> 0
            0.6f, 0.3f, 0.1f,   // label 2 -> 0
            0.4f, 0.4f, 0.2f,   // label 0 -> 0 (tie: the lower class)
        ];
        int[] labels = [1, 2, 2, 0];
        var confusion = new long[3, 3];
        Metrics.AddConfusion(logits, labels, 3, confusion);
        Assert.That(confusion, Is.EqualTo(new long[,] { { 1, 0, 0 }, { 0, 1, 0 }, { 2, 0, 0 } }));
        int trace = 0;
        for (int c = 0; c < 3; c++) trace += (int)confusion[c, c];
        Assert.That(trace, Is.EqualTo(Metrics.TopKHits(logits, labels, 3, 1)), "the diagonal holds the top-1 hits (no ties among them)");
        var eval = new Evaluation(0.5, 1, null, confusion);
        Assert.That(eval.ClassTop1(2), Is.Zero);
        Assert.That(eval.PerClassSummary(["a", "b", "c"]),
            Is.EqualTo("per class top-1: a 100.0 % (1/1), b 100.0 % (1/1), c 0.0 % (0/2); most confused: c as a 2"));
    }

    [Test]
    public void MeanAveragePrecisionIsTheMeanPrecisionAtEachPositive()
    {
        // Class 1 scores rank rows 0, 2, 1, 3; positives are rows 0 and 1: AP = (1/1 + 2/3) / 2.
        // Class 2 scores rank rows 3, 1, 0, 2; its positive is row 3: AP = 1. Class 0 (background) is skipped.
        float[] scores =
        [
            0f, 0.9f, 0.2f,
            0f, 0.5f, 0.6f,
            0f, 0.7f, 0.1f,
            0f, 0.1f, 0.8f,
        ];
        int[] labels = [1, 1, 0, 2];
        double expected = ((1.0 + 2.0 / 3.0) / 2 + 1.0) / 2;
        Assert.That(Metrics.MeanAveragePrecision(scores, labels, 3), Is.EqualTo(expected).Within(1e-12));
    }

    [Test]
    public void PerfectRankingHasMapOneAndClassesWithoutPositivesAreSkipped()
    {
        float[] scores = [0.1f, 0.9f, 0f, 0.8f, 0.2f, 0f, 0.7f, 0.3f, 0f];
        int[] labels = [1, 0, 0];
        Assert.That(Metrics.MeanAveragePrecision(scores, labels, 3), Is.EqualTo(1.0));
    }
}
