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
