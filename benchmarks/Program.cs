using BenchmarkDotNet.Running;

namespace Sbp.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick") return Quick.QuickRunner.Run(args[1..]);
        if (args.Length > 0 && args[0] == "suite") return Suites.SuiteRunner.Run(args[1..]);
        if (args.Length > 0 && args[0] == "step") return Training.StepCommand.Run(args[1..]);
        if (args.Length > 0 && args[0] == "sizes") return Training.SizesCommand.Run(args[1..]);
        if (args.Length == 0)
        {
            Console.WriteLine("usage: dotnet run -c Release --project benchmarks -- [BenchmarkDotNet args]");
            Console.WriteLine("       dotnet run -c Release --project benchmarks -- quick [--json FILE] [--only sgemm,conv3d,gather,ops,sbp-step]");
            Console.WriteLine("       dotnet run -c Release --project benchmarks -- suite [--quick] [--out DIR] [--only swin-micro,swin-t-112,vit-micro,det-micro-long,sweep]");
            Console.WriteLine("       dotnet run -c Release --project benchmarks -- step MODEL BATCH FRAMES SIZE [MODE ...] [--steps N]");
            Console.WriteLine("       dotnet run -c Release --project benchmarks -- sizes [MODEL ...] [--keep K] [--out FILE]   (one SBP step at every Swin clip size)");
            Console.WriteLine("  e.g. --list flat      list benchmarks");
            Console.WriteLine("       --filter '*'     run all benchmarks");
            return 0;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
