// The `sbp` program: a System.CommandLine tree built in Cli/SbpCli.cs (one file per command under Cli/).
return Sbp.Models.Cli.SbpCli.Run(args);
