using System.CommandLine;
using Sbp.Backends.Cuda;
using Sbp.KernelProfile;

namespace Sbp.Cli;

/// <summary>`sbp kernels list` and `sbp kernels profile ENTRY --shape ...`: the PTX kernels on the simulator.</summary>
public static class KernelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("kernels", "PTX kernels on the simulator: list them, profile one launch, or model a training step's GPU timeline" + TrainCommand.Examples(
            "sbp kernels list",
            "sbp kernels profile gather_f32 --shape 8,16,64",
            "sbp kernels model --model swin-t --batch 8 --frames 16 --size 224 --modes full,sbp:0.5"));
        cmd.Add(CreateList());
        cmd.Add(CreateProfile());
        cmd.Add(KernelsModelCommand.Create());
        return cmd;
    }

    static Command CreateList()
    {
        var cmd = new Command("list", "every kernel of kernels/*.ptx, by module" + TrainCommand.Examples("sbp kernels list"));
        cmd.SetAction(r => KernelProfiler.List(r.InvocationConfiguration.Output));
        return cmd;
    }

    static Command CreateProfile()
    {
        var entry = new Argument<string>("entry") { Description = "a kernel entry name (`sbp kernels list`)" };
        var shape = new Option<string>("--shape") { Description = "the tensor shape the launch works on, d0,d1,... (how each kernel reads it: the examples)", Required = true };
        var dim = new Option<int?>("--dim") { Description = "SBP kernels and reduce_f32: the axis of N in [outer, N, inner] (default 1, or 0 for rank 1)" };
        var block = new Option<uint>("--block") { Description = "threads per block: a multiple of 32 in 32..1024", DefaultValueFactory = _ => 256 };
        var seed = new Option<int>("--seed") { Description = "seed of the random inputs", DefaultValueFactory = _ => 1 };
        var examples = KernelRecipes.Known.Order(StringComparer.Ordinal)
            .Select(k => $"sbp kernels profile {k} --shape {KernelRecipes.ExampleShape(k)}".PadRight(68) + $"# {KernelRecipes.ShapeMeaning(k)}").ToArray();
        var cmd = new Command("profile", "run one launch of a kernel on random inputs and print its statistics: instructions by kind, global bytes, " +
            "sectors per request, shared-memory requests and bank conflicts" + TrainCommand.Examples(examples))
        {
            entry, shape, dim, block, seed,
        };
        cmd.SetAction(r => KernelProfiler.Profile(r.GetValue(entry)!, r.GetValue(shape)!, r.GetValue(dim), r.GetValue(block), r.GetValue(seed), r.InvocationConfiguration.Output));
        return cmd;
    }
}
