using Sbp.Models.Data;
using Sbp.Models.Tests.Data;

namespace Sbp.Models.Tests.Distributed;

/// <summary>The loader's shards of an epoch over ranks (PyTorch's DistributedSampler for training; an exact split for evaluation).</summary>
public class DistributedSamplerTests
{
    static VideoLoader Loader(IVideoDataset data, int rank, int ranks, bool train, int batch = 2) =>
        new(data, new VideoLoaderOptions { BatchSize = batch, Train = train, Seed = 7, Workers = 1, Rank = rank, Ranks = ranks });

    [TestCase(12, 2)]
    [TestCase(12, 3)]
    [TestCase(13, 3)]
    [TestCase(5, 4)]
    public void TrainingShardsCoverEverySampleOnceButThePaddingAndFollowTheOneRankOrder(int count, int ranks)
    {
        var data = DataTestSupport.SmallActions(count: count);
        var one = Loader(data, 0, 1, train: true).Order(3);
        var shards = Enumerable.Range(0, ranks).Select(r => Loader(data, r, ranks, train: true).Order(3)).ToList();
        int per = (count + ranks - 1) / ranks;
        Assert.That(shards.Select(s => s.Length), Is.All.EqualTo(per), "equal length on every rank: ceil(N / ranks)");
        // Interleaved, the shards are the one-rank order followed by its head (the padding).
        var interleaved = Enumerable.Range(0, per * ranks).Select(j => shards[j % ranks][j / ranks]).ToArray();
        Assert.That(interleaved, Is.EqualTo(one.Concat(one).Take(per * ranks).ToArray()));
        Assert.That(interleaved.Distinct().Count(), Is.EqualTo(count), "every sample at least once");
        Assert.That(Loader(data, 1 % ranks, ranks, train: true).Order(4), Is.Not.EqualTo(shards[1 % ranks]), "a new shuffle each epoch");
    }

    [Test]
    public void EvaluationShardsAreDisjointWithoutPadding()
    {
        var data = DataTestSupport.SmallActions(count: 7);
        var shards = Enumerable.Range(0, 3).Select(r => Loader(data, r, 3, train: false).Order(0)).ToList();
        Assert.That(shards.SelectMany(s => s).Order().ToArray(), Is.EqualTo(Enumerable.Range(0, 7).ToArray()), "each sample exactly once over the ranks");
        Assert.That(shards.Select(s => s.Length), Is.EqualTo(new[] { 3, 2, 2 }));
    }

    [Test]
    public void BatchesPerEpochCountThisRanksShardAndTooFewSamplesPerRankIsAClearError()
    {
        var data = DataTestSupport.SmallActions(count: 12);
        Assert.That(Loader(data, 1, 2, train: true, batch: 4).BatchesPerEpoch, Is.EqualTo(1), "6 samples per rank: one full batch of 4");
        var e = Assert.Throws<ArgumentException>(() => Loader(data, 0, 4, train: true, batch: 4))!;
        Assert.That(e.Message, Does.Contain("3 per rank over 4 ranks, fewer than one batch of 4 per rank"));
        Assert.Throws<ArgumentException>(() => Loader(data, 2, 2, train: true));
    }
}
