namespace Sbp.Benchmarks.Training;

/// <summary>A model config (ModelFactory name) at an input size: batch, frames, square frames of <paramref name="Size"/> pixels.</summary>
public sealed record StepCase(string Model, int Batch, int Frames, int Size, int Classes = 10, ulong Seed = 1)
{
    public override string ToString() => $"{Model} b{Batch} {Frames}x{Size}x{Size}";
}
