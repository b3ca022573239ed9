using System.CommandLine;

namespace Sbp.Models.Cli;

/// <summary>`sbp kernels ...`: forwards every token after "kernels" to <see cref="Kernels.KernelCommand"/> unchanged.</summary>
public static class KernelsCommand
{
    public static Command Create()
    {
        var rest = new Argument<string[]>("args")
        {
            Description = "list | profile ENTRY --shape d0,d1,... [--dim D] [--block N] [--seed S] (see `sbp kernels help`)",
            Arity = ArgumentArity.ZeroOrMore,
            CaptureRemainingTokens = true,
        };
        var cmd = new Command("kernels", "PTX kernels on the simulator: list them, or profile one launch") { rest };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(r => Kernels.KernelCommand.Run([.. r.GetValue(rest) ?? [], .. r.UnmatchedTokens]));
        return cmd;
    }
}
