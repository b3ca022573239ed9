// The `sbp` program: a System.CommandLine tree built in SbpCli.cs (one file per command).
return Sbp.Cli.SbpCli.Run(args);
