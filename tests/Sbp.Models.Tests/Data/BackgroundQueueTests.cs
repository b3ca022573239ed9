using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class BackgroundQueueTests
{
    [Test]
    public void HandsOutItemsInIndexOrderWhateverTheWorkersFinishingOrder()
    {
        using var q = new BackgroundQueue<int>(40, (i, _) => { Thread.Sleep((i * 7) % 4); return i * i; }, workers: 3, capacity: 6);
        Assert.That(q.Items().ToArray(), Is.EqualTo(Enumerable.Range(0, 40).Select(i => i * i).ToArray()));
    }

    [Test]
    public void ProducersStopAtTheCapacityWhileTheConsumerWaits()
    {
        int produced = 0;
        using var q = new BackgroundQueue<int>(50, (i, _) => { Interlocked.Increment(ref produced); return i; }, workers: 2, capacity: 3);
        SpinWait.SpinUntil(() => Volatile.Read(ref produced) >= 3, TimeSpan.FromSeconds(20));
        Thread.Sleep(100); // give a broken bound the chance to overshoot
        Assert.That(Volatile.Read(ref produced), Is.EqualTo(3), "items produced before the consumer took any");
        int taken = 0;
        while (q.TryTake(out _))
        {
            taken++;
            Assert.That(Volatile.Read(ref produced), Is.LessThanOrEqualTo(taken + 3));
        }
        Assert.That((taken, q.MaxInFlight), Is.EqualTo((50, 3)));
    }

    [Test]
    public void AProducerExceptionSurfacesAtItsItemAfterTheEarlierItems()
    {
        using var q = new BackgroundQueue<int>(20, (i, _) => i == 5 ? throw new InvalidOperationException("bad item five") : i, workers: 2, capacity: 4);
        var got = new List<int>();
        var e = Assert.Throws<BackgroundWorkException>(() => { while (q.TryTake(out var x)) got.Add(x); });
        Assert.Multiple(() =>
        {
            Assert.That(got, Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
            Assert.That(e!.Item, Is.EqualTo(5));
            Assert.That(e.InnerException, Is.TypeOf<InvalidOperationException>().With.Message.EqualTo("bad item five"));
            Assert.That(e.Message, Does.Contain("item 5").And.Contain("bad item five"));
        });
    }

    [Test]
    public void DisposingEarlyStopsTheWorkers()
    {
        int produced = 0;
        var q = new BackgroundQueue<int>(1000, (i, token) => { Interlocked.Increment(ref produced); token.ThrowIfCancellationRequested(); return i; }, workers: 2, capacity: 4);
        Assert.That(q.TryTake(out int first) && first == 0);
        q.Dispose(); // joins the workers: returns only once they have stopped
        int after = Volatile.Read(ref produced);
        Assert.That(after, Is.LessThanOrEqualTo(1 + 4 + 1));
        Assert.Throws<ObjectDisposedException>(() => q.TryTake(out _));
    }

    [Test]
    public void RejectsACapacityBelowTheWorkerCount()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BackgroundQueue<int>(4, (i, _) => i, workers: 3, capacity: 2));
        Assert.That(e!.Message, Does.Contain("capacity (2) must be >= workers (3)"));
    }
}
