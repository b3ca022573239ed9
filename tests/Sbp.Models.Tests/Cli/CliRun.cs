using Sbp.Cli;

namespace Sbp.Models.Tests.Cli;

/// <summary>Runs the `sbp` program in-process: exit code, standard output (the trainer's progress included) and standard error.</summary>
internal static class CliRun
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var console = Console.Out;
        Console.SetOut(o);
        try
        {
            int code = SbpCli.Run(args, o, e);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(console);
        }
    }
}
