using Sbp.Autograd;
using Sbp.OpCases;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// Op names are an interface: the tape's nodes (profiles, anomaly and SBP messages) and the memory
/// pool's labels (memory reports, out-of-memory messages: "op [shape]") carry them, forward and
/// backward. Every gradient case of the op table, with the names a user sees.
/// </summary>
public class OpNameTests
{
    /// <summary>Case -> (the tape's nodes, the output's memory label, each leaf's gradient label).</summary>
    static readonly Dictionary<string, (string Nodes, string Output, string Gradients)> Expected = new()
    {
        ["add (broadcast)"] = ("add", "add [4, 33]", "d0=add.backward [4, 33], d1=add.backward [33]"),
        ["sub (broadcast both)"] = ("sub", "sub [2, 3, 5]", "d0=sub.backward [2, 1, 5], d1=sub.backward [3, 1]"),
        ["add (equal shapes)"] = ("add", "add [3, 70]", "d0=add.backward [3, 70], d1=add.backward [3, 70]"),
        ["mul (equal shapes)"] = ("mul", "mul [1000]", "d0=mul.backward [1000], d1=mul.backward [1000]"),
        ["div"] = ("div", "div [3, 5, 7]", "d0=div.backward [3, 5, 7], d1=div.backward [3, 5, 7]"),
        ["pow"] = ("pow", "pow [3, 5, 7]", "d0=pow.backward [3, 5, 7], d1=pow.backward [7]"),
        ["exp"] = ("exp", "exp [300]", "d0=exp.backward [300]"),
        ["log"] = ("log", "log [300]", "d0=log.backward [300]"),
        ["sqrt"] = ("sqrt", "sqrt [300]", "d0=sqrt.backward [300]"),
        ["relu"] = ("relu", "relu [513]", "d0=relu.backward [513]"),
        ["gelu (erf)"] = ("gelu", "gelu [513]", "d0=gelu.backward [513]"),
        ["gelu (tanh)"] = ("gelu_tanh", "gelu_tanh [513]", "d0=gelu_tanh.backward [513]"),
        ["scale"] = ("mul_scalar", "mul_scalar [257]", "d0=mul_scalar.backward [257]"),
        ["matmul"] = ("matmul", "matmul [5, 9]", "d0=matmul.backward [5, 17], d1=matmul.backward [17, 9]"),
        ["matmul (batched)"] = ("matmul", "matmul [3, 8, 12]", "d0=matmul.backward [3, 8, 16], d1=matmul.backward [3, 16, 12]"),
        ["linear"] = ("linear", "linear [6, 10]", "d0=linear.backward [6, 24], d1=linear.backward [10, 24], d2=linear.backward [10]"),
        ["sum (middle axis)"] = ("sum", "sum [4, 1, 8]", "d0=sum.backward [4, 6, 8]"),
        ["sum (trailing axes)"] = ("sum", "sum [4, 1, 1]", "d0=sum.backward [4, 6, 8]"),
        ["sum (leading axis)"] = ("sum", "sum [1, 7]", "d0=sum.backward [40, 7]"),
        ["mean (all)"] = ("sum, mul_scalar", "mul_scalar []", "d0=sum.backward [5, 66]"),
        ["max (last axis)"] = ("max", "max [4, 6, 1]", "d0=max.backward [4, 6, 8]"),
        ["sum (leading axis, many rows)"] = ("sum", "sum [1, 40]", "d0=sum.backward [600, 40]"),
        ["sum (outer and inner axes, chunked)"] = ("sum", "sum [1, 3, 1]", "d0=sum.backward [4, 3, 600]"),
        ["max (middle axis, chunked)"] = ("max", "max [2, 1, 3]", "d0=max.backward [2, 1500, 3]"),
        ["permute"] = ("permute", "permute [2, 4, 5, 3]", "d0=permute.backward [2, 3, 4, 5]"),
        ["permute (tiled transpose)"] = ("permute", "permute [3, 36, 40]", "d0=permute.backward [3, 40, 36]"),
        ["permute (window partition)"] = ("permute", "permute [1, 2, 3, 2, 2, 17, 18, 1]", "d0=permute.backward [1, 2, 2, 3, 17, 2, 18, 1]"),
        ["slice"] = ("slice", "slice [4, 5, 3]", "d0=slice.backward [4, 9, 3]"),
        ["concat"] = ("concat", "concat [2, 8, 4]", "d0=concat.backward [2, 3, 4], d1=concat.backward [2, 5, 4]"),
        ["roll"] = ("roll", "roll [2, 4, 6, 3]", "d0=roll.backward [2, 4, 6, 3]"),
        ["pad"] = ("pad", "pad [2, 4, 8]", "d0=pad.backward [2, 3, 5]"),
        ["index_select (inner % 4 == 0)"] = ("index_select", "index_select [7, 8]", "d0=index_select.backward [10, 8]"),
        ["index_select (odd inner)"] = ("index_select", "index_select [3, 6, 5]", "d0=index_select.backward [3, 10, 5]"),
        ["index_add (repeated indices)"] = ("index_add", "index_add [6, 5]", "d0=index_add.backward [6, 5], d1=index_add.backward [9, 5]"),
        ["grad_mask (SBP)"] = ("grad_mask, mul_scalar", "mul_scalar [2, 8, 6]", "d0=grad_mask.backward [2, 8, 6]"),
        ["saved as bfloat16 (layer_norm, gelu, linear)"] = ("layer_norm, gelu, linear", "linear [6, 10]",
            "d0=layer_norm.backward [6, 33], d1=layer_norm.backward [33], d2=linear.backward [10, 33]"),
        ["to (bfloat16 and back)"] = ("to, to, mul_scalar", "mul_scalar [5, 67]", "d0=to.backward [5, 67]"),
        // autocast: x and b rounded for linear's 16-bit GEMM (the CPU rounds the Float32 weight as it packs it); gelu reads its
        // 16-bit output and writes a 16-bit q = k = v; attention reads them and writes a 16-bit output, cast to Float32 by the case
        ["autocast bfloat16 (linear, gelu, attention)"] = ("to, to, linear, gelu, scaled_dot_product_attention, to",
            "to [2, 2, 9, 8]", "d0=to.backward [2, 2, 9, 8], d1=linear.backward [8, 8], d2=to.backward [8]"),
        ["autocast float16 attention (bias, window mask)"] = ("to, to, to, to, scaled_dot_product_attention, to", "to [6, 2, 9, 6]",
            "d0=to.backward [6, 2, 9, 8], d1=to.backward [6, 2, 9, 8], d2=to.backward [6, 2, 9, 6], d3=to.backward [2, 9, 9]"),
        ["autocast bfloat16 (bias_gelu)"] = ("to, bias_gelu, to", "to [6, 40]", "d0=to.backward [6, 40], d1=bias_gelu.backward [40]"),
        ["autocast bfloat16 (conv3d, relu)"] = ("to, to, to, conv3d, relu, to", "to [2, 4, 3, 3, 3]",
            "d0=to.backward [2, 3, 3, 6, 6], d1=to.backward [4, 3, 3, 3, 3], d2=to.backward [4]"),
        ["autocast float16 (bias_gelu tanh, gelu)"] = ("to, bias_gelu_tanh, gelu, to", "to [5, 24]", "d0=to.backward [5, 24], d1=bias_gelu_tanh.backward [24]"),
        // no cast pass: drop_path, dropout, add, mul and sub read the 16-bit operand widened (autocast's promotion)
        ["autocast bfloat16 (residual add, drop_path, dropout, promoted)"] = ("to, add, drop_path, add, dropout, add, sub, mul, mul, sub, div", "div [4, 6, 10]",
            "d0=add.backward [4, 6, 10], d1=to.backward [4, 6, 10], d2=sub.backward [10], d3=mul.backward [10], d4=div.backward [10]"),
        ["SBP sparse cache under autocast (attention over 9 keys)"] = ("to, linear, reshape, linear, reshape, scaled_dot_product_attention, reshape, sbp.region_output, to",
            "to [2, 9, 8]", "d0=linear.backward [8, 8], d1=linear.backward [8, 8], d2=to.backward [2, 9, 8]"),
        ["autocast bfloat16 (layer_norm of a 16-bit input, to a 16-bit output)"] = ("to, layer_norm, layer_norm, add", "add [6, 40]",
            "d0=to.backward [6, 40], d1=layer_norm.backward [6, 40], d2=layer_norm.backward [40], d3=layer_norm.backward [40], d4=layer_norm.backward [40]"),
        ["autocast float16 (cross_entropy of 16-bit logits)"] = ("to, cross_entropy", "cross_entropy [1]", "d0=to.backward [5, 11]"),
        ["autocast float16 (conv3d without bias)"] = ("to, to, conv3d, to", "to [2, 4, 3, 3, 3]", "d0=to.backward [2, 3, 3, 6, 6], d1=to.backward [4, 3, 3, 3, 3]"),
        ["autocast bfloat16 (Swin's pad, roll, window partition and reverse)"] = ("to, pad, roll, reshape, permute, reshape, reshape, permute, reshape, roll, to",
            "to [1, 4, 5, 8, 4]", "d0=to.backward [1, 3, 5, 6, 4]"),
        ["autocast float16 (relu)"] = ("to, relu, to", "to [7, 33]", "d0=to.backward [7, 33]"),
        ["saved as bfloat16 (attention)"] = ("scaled_dot_product_attention", "scaled_dot_product_attention [2, 2, 9, 8]", "d0=scaled_dot_product_attention.backward [2, 2, 9, 8], d1=scaled_dot_product_attention.backward [2, 2, 9, 8], d2=scaled_dot_product_attention.backward [2, 2, 9, 8], d3=scaled_dot_product_attention.backward [2, 9, 9]"),
        ["softmax (last axis)"] = ("softmax", "softmax [7, 33]", "d0=softmax.backward [7, 33]"),
        ["softmax (axis 1)"] = ("softmax", "softmax [3, 9, 4]", "d0=softmax.backward [3, 9, 4]"),
        ["log_softmax"] = ("log_softmax", "log_softmax [7, 33]", "d0=log_softmax.backward [7, 33]"),
        ["attention (bias)"] = ("scaled_dot_product_attention", "scaled_dot_product_attention [2, 2, 9, 8]", "d0=scaled_dot_product_attention.backward [2, 2, 9, 8], d1=scaled_dot_product_attention.backward [2, 2, 9, 8], d2=scaled_dot_product_attention.backward [2, 2, 9, 8], d3=scaled_dot_product_attention.backward [2, 9, 9]"),
        ["layer_norm"] = ("layer_norm", "layer_norm [6, 40]", "d0=layer_norm.backward [6, 40], d1=layer_norm.backward [40], d2=layer_norm.backward [40]"),
        ["batch_norm (train)"] = ("batch_norm", "batch_norm [4, 6, 5, 5]", "d0=batch_norm.backward [4, 6, 5, 5], d1=batch_norm.backward [6], d2=batch_norm.backward [6]"),
        ["batch_norm (train, eps 0.1: the layer's eps reaches backward)"] = ("batch_norm", "batch_norm [4, 6, 5, 5]", "d0=batch_norm.backward [4, 6, 5, 5], d1=batch_norm.backward [6], d2=batch_norm.backward [6]"),
        ["batch_norm (eval)"] = ("batch_norm", "batch_norm [4, 6, 3, 3]", "d0=batch_norm.backward [4, 6, 3, 3], d1=batch_norm.backward [6], d2=batch_norm.backward [6]"),
        ["conv2d (stride 2, pad 1)"] = ("conv2d", "conv2d [2, 4, 5, 5]", "d0=conv2d.backward [2, 3, 9, 9], d1=conv2d.backward [4, 3, 3, 3], d2=conv2d.backward [4]"),
        ["conv2d (depthwise)"] = ("conv2d", "conv2d [2, 4, 7, 7]", "d0=conv2d.backward [2, 4, 7, 7], d1=conv2d.backward [4, 1, 3, 3]"),
        ["conv3d (patch embed)"] = ("conv3d", "conv3d [1, 5, 2, 2, 2]", "d0=conv3d.backward [1, 3, 4, 8, 8], d1=conv3d.backward [5, 3, 2, 4, 4], d2=conv3d.backward [5]"),
        ["max_pool3d"] = ("max_pool3d", "max_pool3d [1, 2, 2, 3, 3]", "d0=max_pool3d.backward [1, 2, 4, 6, 6]"),
        ["avg_pool2d"] = ("avg_pool2d", "avg_pool2d [2, 3, 4, 4]", "d0=avg_pool2d.backward [2, 3, 7, 7]"),
        ["global_avg_pool"] = ("sum, mul_scalar", "mul_scalar [2, 5]", "d0=sum.backward [2, 5, 3, 4, 4]"),
        ["cross_entropy"] = ("cross_entropy", "cross_entropy [1]", "d0=cross_entropy.backward [8, 10]"),
        ["cross_entropy (label smoothing)"] = ("cross_entropy", "cross_entropy [1]", "d0=cross_entropy.backward [8, 10]"),
        ["bce_with_logits"] = ("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits [1, 1]", "d0=binary_cross_entropy_with_logits.backward [6, 7]"),
        ["dropout"] = ("dropout", "dropout [4, 129]", "d0=dropout.backward [4, 129]"),
    };

    public static IEnumerable<OpCase> Cases => OpTable.All.Where(c => c.Forward is not null);

    [TestCaseSource(nameof(Cases))]
    public void EveryOpNamesItsNodesAndLabelsItsMemory(OpCase c)
    {
        Assert.That(Expected.ContainsKey(c.Name), $"a new case: add '{c.Name}' to the table of names");
        var device = Device.CreateCpu($"names {c.Name}");
        using var scope = TensorScope.Begin();
        var inputs = new CaseInputs(device);
        using var tape = Tape.Begin();
        var y = c.Forward!(inputs);
        string nodes = string.Join(", ", tape.Nodes.Select(n => n.Op));
        string output = y.Block.Label;
        tape.Backward(Ops.Sum(y));
        string gradients = string.Join(", ", inputs.Leaves.Select(l => $"{l.Name}={l.Tensor.Grad?.Block.Label}"));
        Assert.That((nodes, output, gradients), Is.EqualTo(Expected[c.Name]));
    }

    [Test]
    public void ScalarAndLayoutOpsNameTheirNodesAndMemory()
    {
        var device = Device.CreateCpu("names of scalar ops");
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], new Shape(2, 3), device);
        x.RequiresGrad = true;
        var bias = Tensor.FromArray([0.1f, 0.2f, 0.3f], new Shape(3), device);
        (string Op, Func<Tensor> Run)[] ops =
        [
            ("add_scalar", () => Ops.Add(x, 1f)), ("add_scalar", () => Ops.Sub(x, 1f)), ("rsub_scalar", () => Ops.Sub(1f, x)),
            ("mul_scalar", () => Ops.Div(x, 2f)), ("rdiv_scalar", () => Ops.Div(1f, x)), ("neg", () => Ops.Neg(x)),
            ("pow_scalar", () => Ops.Pow(x, 3f)), ("permute", () => Ops.Transpose(x, 0, 1)), ("bias_gelu", () => Ops.BiasGelu(x, bias)),
            ("bias_gelu_tanh", () => Ops.BiasGelu(x, bias, tanhApproximation: true)),
        ];
        foreach (var (op, run) in ops)
        {
            using var tape = Tape.Begin();
            var y = run();
            Assert.That((tape.Nodes.Single().Op, y.Block.Label), Is.EqualTo((op, $"{op} {y.Shape}")), op);
        }
    }
}
