using Sbp.Autograd;
using Sbp.Distributed;
using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Training;

// Evaluation on the held-out split, alone or shared by the ranks of a data-parallel run.
public sealed partial class Trainer
{
    /// <summary>
    /// Top-1 and top-5 accuracy (per frame for detection, with per-frame mAP) and the confusion counts on a dataset, without recording.
    /// With a <paramref name="communicator"/> of several ranks, each evaluates every rank-th clip and the counts are summed
    /// (detection's mAP needs every score: each rank evaluates all of it); every rank gets the same result.
    /// </summary>
    public static Evaluation Evaluate(VideoModel model, IVideoDataset data, int batchSize, ulong seed, Communicator? communicator = null, DType precision = DType.Float32)
    {
        var confusion = new long[data.ClassNames.Count, data.ClassNames.Count];
        var device = model.Device;
        var comm = communicator is { Size: > 1 } && !data.PerFrameLabels ? communicator : null;
        var loader = new VideoLoader(data, new VideoLoaderOptions
        {
            BatchSize = batchSize, Train = false, Seed = seed, Rank = comm?.Rank ?? 0, Ranks = comm?.Size ?? 1, DropLast = false,
        }, device);
        long rows = 0, hit1 = 0, hit5 = 0;
        var scores = new List<float>();
        var labels = new List<int>();
        model.Eval();
        try
        {
            using var noGrad = Tape.NoGrad();
            foreach (var batch in loader.Epoch(0))
            {
                using (batch)
                using (var scope = TensorScope.Begin())
                {
                    Tensor logits;
                    using (Autocast.Begin(precision)) logits = model.Forward(Input(model, batch.Clips), null, 0);
                    int classes = logits.Shape[-1];
                    var l = logits.ToArray();
                    var y = batch.Labels.ToIntArray();
                    hit1 += Metrics.TopKHits(l, y, classes, 1);
                    hit5 += Metrics.TopKHits(l, y, classes, Math.Min(5, classes));
                    Metrics.AddConfusion(l, y, classes, confusion);
                    rows += y.Length;
                    if (data.PerFrameLabels)
                    {
                        scores.AddRange(Ops.Softmax(logits, -1).ToArray());
                        labels.AddRange(y);
                    }
                }
            }
        }
        finally
        {
            model.Train();
        }
        if (comm is not null) (rows, hit1, hit5) = SumOverRanks(comm, rows, hit1, hit5, confusion);
        double? map = data.PerFrameLabels ? Metrics.MeanAveragePrecision(scores.ToArray(), labels.ToArray(), data.ClassNames.Count) : null;
        return new Evaluation(rows == 0 ? 0 : (double)hit1 / rows, rows == 0 ? 0 : (double)hit5 / rows, map, confusion);
    }

    /// <summary>The evaluation counts summed over the ranks (the confusion counts in place).</summary>
    static (long Rows, long Hit1, long Hit5) SumOverRanks(Communicator comm, long rows, long hit1, long hit5, long[,] confusion)
    {
        var v = new double[3 + confusion.Length];
        (v[0], v[1], v[2]) = (rows, hit1, hit5);
        int k = 3;
        foreach (long x in confusion) v[k++] = x;
        comm.AllReduce(v, "the evaluation counts");
        k = 3;
        for (int i = 0; i < confusion.GetLength(0); i++)
            for (int j = 0; j < confusion.GetLength(1); j++) confusion[i, j] = (long)v[k++];
        return ((long)v[0], (long)v[1], (long)v[2]);
    }
}
