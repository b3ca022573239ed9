// Placeholder for the `sbp` program. The real commands (train, eval, compare, memory,
// datasets: full backprop vs SBP on built-in synthetic video data) arrive with
// issue 7 ("data and the sbp program"). Until then every invocation prints this
// notice and exits 0, except `sbp kernels list|profile` (PTX kernels on the simulator, issue 9).
using Sbp;

if (args.Length > 0 && args[0] == "kernels")
    return Sbp.Models.Kernels.KernelCommand.Run(args[1..]);

Console.WriteLine($"sbp: placeholder (args: {(args.Length == 0 ? "none" : string.Join(' ', args))})");
Console.WriteLine("The sbp program (train/eval/compare/memory/datasets) arrives with issue 7: data and the sbp program.");
Console.WriteLine($"engine: Sbp.Engine {EngineInfo.Version}");
Console.WriteLine("device: cpu (no CUDA backend yet)");
return 0;
