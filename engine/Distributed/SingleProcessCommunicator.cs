using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>One rank alone: every collective is the identity.</summary>
public sealed class SingleProcessCommunicator : Communicator
{
    public override int Rank => 0;
    public override int Size => 1;
    public override string Engine => "single";
    public override PendingReduction StartAllReduce(Tensor buffer, string what) => CompletedReduction.Instance;
    public override void AllReduce(Span<double> values, string what) { }
    public override void Broadcast(Tensor tensor, int root, string what) => CheckRoot(root);
    public override void Broadcast(Span<byte> bytes, int root, string what) => CheckRoot(root);
    public override void Barrier(string what) { }

    public override void Abort(int code, string message)
    {
        Console.Error.WriteLine(message);
        Environment.Exit(code);
    }

    static void CheckRoot(int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "SingleProcessCommunicator: the only rank is 0.");
    }
}
