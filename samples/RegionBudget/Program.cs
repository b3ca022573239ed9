// A custom module trained with Stochastic Backpropagation: each block of a small temporal model is an SBP
// region over frames, and the bytes each region holds for backward are printed against a memory budget,
// for keep ratios 1, 1/2 and 1/4. The budget is a fraction of what full backprop holds (default 0.6):
//   dotnet run -- 0.4
using System.Globalization;
using Sbp;
using Sbp.Autograd;
using Sbp.Nn;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

double budgetFraction = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 0.6;
if (budgetFraction is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(args), $"budget fraction {budgetFraction}: give a number in (0, 1].");
const int Batch = 2, Frames = 16, Width = 32, Blocks = 3;

var data = new float[Batch * Frames * Width];
new RandomSource(7).Uniform(data);
long? fullBytes = null;
double? chosen = null;
foreach (double keep in new[] { 1.0, 0.5, 0.25 })
{
    var rng = new RandomSource(1);                      // the same weights for every keep ratio
    using var model = new TemporalModel(Width, Blocks, rng);
    using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f);
    var masks = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, keep, Seed: 1));
    using var scope = TensorScope.Begin();
    var x = Tensor.FromArray(data, new Shape(Batch, Frames, Width));
    using var tape = Tape.Begin();
    var h = x;
    for (int b = 0; b < Blocks; b++)
    {
        var block = model.Block(b);
        // The block runs forward on every frame; backward sees only the kept ones (the region caches only those).
        h = SbpRegion.Run($"block{b}", h, dim: 1, masks.Next(step: 0, layer: b, Frames), t => block.Forward(t));
    }
    var loss = Ops.Mean(Ops.Mul(h, h));
    var regions = tape.Regions.ToList();
    long held = regions.Sum(r => r.SavedBytes);
    fullBytes ??= held;
    long budget = (long)(budgetFraction * fullBytes.Value);
    Console.WriteLine($"keep {keep}: loss {loss.Item():F5}");
    foreach (var r in regions)
        Console.WriteLine($"  {r.Name,-7} keeps {r.Kept,2} of {r.Size} frames, holds {r.SavedBytes,7:N0} B for backward (full backprop {r.FullSavedBytes,7:N0} B), budget per region {budget / Blocks,7:N0} B: {(r.SavedBytes <= budget / Blocks ? "fits" : "over")}");
    Console.WriteLine($"  all regions {held:N0} B of a {budget:N0} B budget ({budgetFraction:P0} of full backprop): {(held <= budget ? "fits" : "over")}");
    if (held <= budget) chosen ??= keep;
    tape.Backward(loss);                                 // gradients from the kept frames, scattered back
    optimizer.Step();
}
Console.WriteLine(chosen is { } k ? $"the largest keep ratio within the budget: {k}" : "no keep ratio tried fits the budget: lower the keep ratio or raise the budget");

/// <summary>A custom module: blocks of LayerNorm, a per-frame MLP and a residual connection, on [batch, frames, width].</summary>
sealed class TemporalModel : Module
{
    readonly List<Block> _blocks = [];

    public TemporalModel(int width, int blocks, RandomSource rng)
    {
        for (int b = 0; b < blocks; b++) _blocks.Add(RegisterModule($"block{b}", new Block(width, rng)));
    }

    public Module Block(int index) => _blocks[index];

    public override Tensor Forward(Tensor x)
    {
        foreach (var block in _blocks) x = block.Forward(x);
        return x;
    }
}

/// <summary>x + mlp(norm(x)): every op works frame by frame, so the block can run backward on the kept frames alone.</summary>
sealed class Block : Module
{
    readonly LayerNorm _norm;
    readonly Mlp _mlp;

    public Block(int width, RandomSource rng)
    {
        _norm = RegisterModule("norm", new LayerNorm(width));
        _mlp = RegisterModule("mlp", new Mlp(width, 4 * width, rng));
    }

    public override Tensor Forward(Tensor x) => Ops.Add(x, _mlp.Forward(_norm.Forward(x)));
}
