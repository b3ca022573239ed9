using Sbp.Autograd;
using Sbp.Nn;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Docs;

/// <summary>
/// The README's engine example, compiled and run here: the lines between the markers are the README's
/// code block, character for character (checked below), so the example cannot drift from the API.
/// </summary>
public class ReadmeExampleTests
{
    static List<float> RunTheExample(TextWriter output)
    {
        var losses = new List<float>();
        // README: begin
        var rng = new RandomSource(1);
        using var mlp = new Mlp(inFeatures: 16, hiddenFeatures: 64, rng);   // Linear(16, 64), GELU, Linear(64, 16)
        using var head = new Linear(16, 4, rng);                            // weight [out 4, in 16] and bias [4]
        // AdamW takes named parameters (one group) or ParamGroups (e.g. ParamGroup.SplitDecay: no decay on norms and biases).
        using var optimizer = new AdamW(mlp.NamedParameters().Concat(head.NamedParameters()), learningRate: 1e-2f);
        var masks = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, KeepRatio: 0.5, Seed: 1));
        var data = new float[2 * 8 * 16];
        rng.Uniform(data);
        for (int step = 0; step < 20; step++)
        {
            using var scope = TensorScope.Begin();                      // frees every tensor the step makes
            var x = Tensor.FromArray(data, new Shape(2, 8, 16));        // [batch, frames, features]
            var labels = Tensor.FromArray(new[] { 1, 3 }, new Shape(2));
            using var tape = Tape.Begin();                              // regions run inside a recording tape
            // layer: which region the mask is for; with MaskScope.Layer each layer draws its own (the default shares one per step).
            var mask = masks.Next(step, layer: 0, x.Shape[1]);          // 4 of the 8 frames
            var h = SbpRegion.Run("mlp", x, dim: 1, mask, t => mlp.Forward(t));
            var loss = Ops.CrossEntropy(head.Forward(Ops.Mean(h, [1])), labels);
            output.WriteLine($"step {step}: loss {loss.Item():F4}, held for backward {tape.SavedBytes} B");
            tape.Backward(loss);                                        // the region's gradient at its kept frames only
            optimizer.Step();
            optimizer.ZeroGrad();
            losses.Add(loss.Item());
        }
        // README: end
        return losses;
    }

    [Test]
    public void The_example_trains()
    {
        var output = new StringWriter();
        var losses = RunTheExample(output);
        Assert.That(losses[^1], Is.LessThan(losses[0] * 0.5f), "the example's loss falls");
        Assert.That(output.ToString(), Does.Contain("step 0: loss").And.Contain("held for backward"));
    }

    [Test]
    public void The_readme_shows_the_example_as_it_compiles()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Engine.sln"))) root = Path.GetDirectoryName(root) ?? throw new AssertionException("repository root not found");
        var source = File.ReadAllLines(Path.Combine(root, "tests", "Sbp.Engine.Tests", "Docs", "ReadmeExampleTests.cs"));
        int begin = Array.FindIndex(source, l => l.Trim() == "// README: begin"), end = Array.FindIndex(source, l => l.Trim() == "// README: end");
        var body = source[(begin + 1)..end].Where(l => !l.Contains("losses.Add", StringComparison.Ordinal)).ToArray();
        int indent = body.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        var expected = body.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart())
            .Select(l => l.Replace("output.WriteLine", "Console.WriteLine", StringComparison.Ordinal)).ToArray();
        var readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        Assert.That(readme, Does.Contain(string.Join("\n", expected)),
            "README.md's engine example must be the code between the README markers of this test (with Console for output)");
    }
}
