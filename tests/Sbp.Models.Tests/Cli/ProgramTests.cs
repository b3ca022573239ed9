using System.Diagnostics;
using System.Text.Json;
using Sbp.Cli;
using Sbp.KernelProfile;
using Sbp.Models.Training;
using static Sbp.Models.Tests.Cli.CliRun;

namespace Sbp.Models.Tests.Cli;

/// <summary>The `sbp` program as a new user meets it (issue #25): one test per thing the user saw go wrong.</summary>
public class ProgramTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("sbp-program-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    static readonly string[] Tiny = ["--model", "r21d-nano", "--train-count", "16", "--val-count", "4", "--frames", "4", "--size", "16", "--batch", "4", "--workers", "1", "--device", "cpu"];

    string Path_(params string[] parts) => Path.Combine([_dir, .. parts]);

    static void AssertUserError((int Code, string Out, string Err) r, params string[] named)
    {
        Assert.That(r.Code, Is.EqualTo(2), $"stdout: {r.Out}\nstderr: {r.Err}");
        foreach (var n in named) Assert.That(r.Err, Does.Contain(n));
        Assert.That(r.Err, Does.Not.Contain("   at ").And.Not.Contain("Exception"), "one message, no stack trace");
    }

    // ---- 1. no stack traces for user errors ---------------------------------------------------------------

    [TestCase(0)]
    [TestCase(5)]
    [TestCase(-1)]   // a whole checkpoint with its last 100 bytes cut off
    [TestCase(-2)]   // a byte of the data flipped (the checksum)
    public void A_bad_checkpoint_is_one_message_for_eval_and_resume(int keep)
    {
        var run = Path_("run");
        Assert.That(Run(["train", .. Tiny, "--epochs", "1", "--out", run]).Code, Is.Zero);
        var path = Path.Combine(run, "checkpoint.safetensors");
        var bytes = File.ReadAllBytes(path);
        if (keep == -2) bytes[^50] ^= 0x40;
        File.WriteAllBytes(path, keep switch { -1 => bytes[..^100], -2 => bytes, _ => bytes[..keep] });
        AssertUserError(Run(["eval", "--model", "r21d-nano", "--val-count", "4", "--frames", "4", "--size", "16", "--batch", "4", "--device", "cpu", "--checkpoint", path]),
            "sbp eval: --checkpoint", path);
        AssertUserError(Run(["train", .. Tiny, "--epochs", "2", "--out", run, "--resume"]), "sbp train: --resume", path);
    }

    [TestCase("train", "det-nano", "synthetic-actions", "predicts a class per frame")]
    [TestCase("compare", "det-nano", "synthetic-actions", "predicts a class per frame")]
    [TestCase("train", "r21d-nano", "synthetic-detection", "predicts one class per clip")]
    [TestCase("eval", "r21d-nano", "synthetic-detection", "predicts one class per clip")]
    public void A_model_and_data_with_different_label_kinds_are_one_message_before_any_work(string command, string model, string data, string says)
    {
        string[] options = ["--model", model, "--data", data, "--val-count", "4", "--frames", "4", "--size", "16", "--batch", "4", "--device", "cpu"];
        if (command == "eval")
        {
            File.WriteAllBytes(Path_("any.safetensors"), [1, 2, 3]);   // the labels are checked before the checkpoint is read
            options = [.. options, "--checkpoint", Path_("any.safetensors")];
        }
        else options = [.. options, "--train-count", "4", "--epochs", "1", "--workers", "1"];
        var r = Run([command, .. options]);
        AssertUserError(r, $"sbp {command}: --model {model} {says}", "use ");
        Assert.That(r.Out, Does.Not.Contain("epoch 1"), "nothing trained");
    }

    [Test]
    public void Messages_name_the_command_that_ran_and_no_library_type()
    {
        var r = Run(["train", .. Tiny, "--mode", "bogus"]);
        AssertUserError(r, "sbp train: --mode 'bogus'");
        Assert.That(r.Err, Does.Not.Contain("compare"));
        var batch = Run(["train", "--model", "r21d-nano", "--train-count", "4", "--val-count", "4", "--frames", "4", "--size", "16", "--batch", "8", "--device", "cpu"]);
        AssertUserError(batch, "--batch 8");
        Assert.That(batch.Err, Does.Not.Contain("VideoLoader").And.Not.Contain("ModelFactory").And.Not.Contain("SyntheticActions"));
    }

    // ---- 2. everything checked before the first step -------------------------------------------------------

    [Test]
    public void Compare_checks_its_output_paths_and_makes_its_folders_before_training()
    {
        var notAFolder = Path_("file");
        File.WriteAllText(notAFolder, "x");
        var r = Run(["compare", .. Tiny, "--epochs", "1", "--out", Path_("runs"), "--json", Path.Combine(notAFolder, "r.json")]);
        AssertUserError(r, "--json");
        Assert.That(r.Out, Does.Not.Contain("epoch 1"), "no mode trained");
        Assert.That(Directory.Exists(Path_("runs")), Is.True, "output folders are made first");
    }

    [Test]
    public void Compare_with_seeds_runs_each_seed_as_its_own_comparison_would_and_summarises()
    {
        string[] common = ["compare", .. Tiny, "--epochs", "1", "--modes", "full,sbp:0.5"];
        var r = Run([.. common, "--seeds", "1,2", "--json", Path_("seeds.json")]);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("seed 2 (2 of 2)").And.Contain("per mode:").And.Contain("| sbp-0.5 | 2 |"));
        Assert.That(Run([.. common, "--seed", "2", "--json", Path_("seed2.json")]).Code, Is.Zero);
        using var all = JsonDocument.Parse(File.ReadAllText(Path_("seeds.json")));
        using var one = JsonDocument.Parse(File.ReadAllText(Path_("seed2.json")));
        var runs = all.RootElement.EnumerateArray().ToList();
        Assert.That(runs.Select(o => o.GetProperty("seed").GetUInt64()), Is.EqualTo(new ulong[] { 1, 1, 2, 2 }));
        // seed 2 within --seeds is the same data, start and masks as a comparison with --seed 2
        var alone = one.RootElement.EnumerateArray().ToList();
        for (int i = 0; i < 2; i++)
            foreach (var field in new[] { "label", "top1", "final_loss", "saved_activation_bytes" })
                Assert.That(runs[2 + i].GetProperty(field).ToString(), Is.EqualTo(alone[i].GetProperty(field).ToString()), field);
        Assert.That(runs[0].GetProperty("final_loss").GetDouble(), Is.Not.EqualTo(runs[2].GetProperty("final_loss").GetDouble()), "another seed, another run");
        AssertUserError(Run([.. common, "--seed", "3", "--seeds", "1,2"]), "--seed", "--seeds");
        AssertUserError(Run([.. common, "--seeds", "1,1"]), "--seeds", "twice");
    }

    // ---- 3. honest resume ----------------------------------------------------------------------------------

    [Test]
    public void Resume_without_a_checkpoint_stops_and_says_so()
    {
        var r = Run(["train", .. Tiny, "--epochs", "1", "--out", Path_("empty"), "--resume"]);
        AssertUserError(r, "--resume", "no checkpoint.safetensors");
        Assert.That(r.Out, Does.Not.Contain("epoch 1"));
    }

    [Test]
    public void A_resumed_run_repeats_no_metrics_counts_from_its_step_and_reports_the_whole_epoch()
    {
        string[] args = ["train", .. Tiny, "--epochs", "1"];
        var whole = Path_("whole");
        Assert.That(Run([.. args, "--out", whole]).Code, Is.Zero);
        var part = Path_("part");
        Assert.That(Run([.. args, "--out", part, "--max-steps", "2"]).Code, Is.Zero);                // a checkpoint at step 2
        var early = File.ReadAllBytes(Path.Combine(part, "checkpoint.safetensors"));
        Assert.That(Run([.. args, "--out", part, "--resume", "--max-steps", "3"]).Code, Is.Zero);     // metrics up to step 3
        File.WriteAllBytes(Path.Combine(part, "checkpoint.safetensors"), early);                        // as if it crashed before saving step 3
        var resumed = Run([.. args, "--out", part, "--resume"]);
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("resumed from").And.Contain("at step 2"));
        Assert.That(resumed.Out, Does.Contain(" 4/4 loss").And.Not.Contain(" 1/2 loss"), "the progress counts the epoch's steps from its start");

        var records = File.ReadAllLines(Path.Combine(part, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var steps = records.Where(r => r.GetProperty("type").GetString() == "step").Select(r => r.GetProperty("step").GetInt64()).ToList();
        Assert.That(steps, Is.EqualTo(new long[] { 1, 2, 3, 4 }), "no step recorded twice");
        Assert.That(records.Count(r => r.GetProperty("type").GetString() == "resume"), Is.EqualTo(2), "each resumption is marked");
        double Epoch(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Single(r => r.GetProperty("type").GetString() == "epoch").GetProperty("loss").GetDouble();
        Assert.That(Epoch(part), Is.EqualTo(Epoch(whole)), "the epoch loss covers the whole epoch, as without the interruption");
    }

    // ---- 4. Ctrl-C -----------------------------------------------------------------------------------------

    [Test]
    public void Ctrl_c_saves_a_checkpoint_says_how_to_resume_and_exits_130()
    {
        var run = Path_("run");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sbp.dll"));
        // A shell starts background jobs with SIGINT ignored, and children inherit that: the child would never see the
        // signal (the run went on to its end and exited 0 when the tests ran under `bash .ci/run &`). Give it the default.
        if (OperatingSystem.IsLinux() && SigIntIgnored()) _ = Signal(2, IntPtr.Zero);   // SIGINT, SIG_DFL
        string[] args = ["train", .. Tiny.Where((_, i) => i is not (2 or 3)), "--train-count", "4000", "--epochs", "50", "--out", run];
        foreach (var a in args) info.ArgumentList.Add(a);
        using var child = Process.Start(info)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        var metrics = Path.Combine(run, "metrics.jsonl");
        var watch = Stopwatch.StartNew();
        while (!child.HasExited && watch.Elapsed < TimeSpan.FromMinutes(2) && !(File.Exists(metrics) && ReadShared(metrics).Contains("\"step\"", StringComparison.Ordinal)))
            Thread.Sleep(20);
        Assert.That(child.HasExited, Is.False, "the run ended before Ctrl-C");
        using (var kill = Process.Start("kill", ["-INT", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        Assert.That(child.WaitForExit(TimeSpan.FromMinutes(1)), Is.True, "the run did not stop after Ctrl-C");
        Assert.That(child.ExitCode, Is.EqualTo(SbpCli.ExitInterrupted));
        Assert.That(stdout.Result + stderr.Result, Does.Contain("interrupted at step").And.Contain("--resume"));
        Assert.That(File.Exists(Path.Combine(run, "checkpoint.safetensors")), Is.True, "a checkpoint was saved");
        var resumed = Run([.. args, "--resume", "--max-steps", "200"]);
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("resumed from"));
    }

    /// <summary>Whether this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status).</summary>
    static bool SigIntIgnored() =>
        File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line &&
        (ulong.Parse(line["SigIgn:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) & 2UL) != 0;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "signal")]
    static extern IntPtr Signal(int signal, IntPtr handler);

    static string ReadShared(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(s).ReadToEnd();
    }

    // ---- 5. memory with its defaults -----------------------------------------------------------------------

    [Test]
    public void Memory_runs_with_its_defaults_and_advises_options_it_has()
    {
        var r = Run("memory", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("| 1 |").And.Contain("| 0.5 |").And.Contain("keep 0.25 left out of the defaults"));
        var asked = Run("memory", "--device", "cpu", "--keep", "0.25");
        AssertUserError(asked, "--keep 0.25", "keep 1, 0.5");
        Assert.That(asked.Err, Does.Not.Contain("KeepMask(").And.Not.Contain("MaskKind.Random"));
    }

    // ---- 6. bad list lines during train --------------------------------------------------------------------

    [Test]
    public void Train_prints_the_bad_lines_it_skips_and_stops_at_the_first_with_strict()
    {
        var data = Path_("data");
        Assert.That(Run("datasets", "make", "synthetic-actions", "--out", data, "--format", "png", "--train", "8", "--val", "4", "--frames", "4", "--size", "16").Code, Is.Zero);
        var list = Path.Combine(data, "train.txt");
        using (var f = File.Open(list, FileMode.Append))
        {
            f.Write("missing/clip 4 1\nthree fields too many here\n"u8);
            f.Write([.. "caf"u8, 0xE9, .. " 4 1\n"u8]);   // a Latin-1 name: not UTF-8
        }
        string[] args = ["train", "--model", "r21d-nano", "--data", list, "--frames", "4", "--batch", "4", "--epochs", "1", "--workers", "1", "--device", "cpu"];
        var r = Run(args);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Err, Does.Contain("3 bad lines skipped").And.Contain($"{list}:9: file not found").And.Contain($"{list}:10:").And.Contain($"{list}:11:"));
        Assert.That(r.Err, Does.Contain(@"caf\xe9").And.Not.Contain("\uFFFD"), "a non-UTF-8 name is shown escaped");
        AssertUserError(Run([.. args, "--strict"]), $"{list}:9: file not found");
    }

    // ---- 7. plots that tell the truth ----------------------------------------------------------------------

    [Test]
    public void Plots_show_every_mode_as_labelled_bars_and_styled_lines_with_axes_from_zero()
    {
        var curve = Enumerable.Range(1, 20).Select(i => ((long)i, 2.0 + 1.0 / i)).ToList();
        CompareRow[] rows =
        [
            new("full", "full", 1, 0.91, 1, null, 100 << 20, 80 << 20, 500, 1000, curve),
            new("checkpoint", "checkpoint", 1, 0.91, 1, null, 120 << 20, 10 << 20, 650, 1000, curve),
            new("sbp-0.5", "sbp", 0.5, 0.90, 1, null, 60 << 20, 40 << 20, 400, 1000, curve),
        ];
        var set = ComparePlots.PlotModels(rows, detection: false, "swin-micro on synthetic-actions (8 train / 4 held-out clips), 3 epochs, cpu");
        foreach (var plot in new[] { set.Loss, set.Memory, set.Accuracy })
        {
            Assert.That(plot.Axes.Title.Label.Text, Does.Contain("swin-micro").And.Contain("synthetic-actions").And.Contain("3 epochs"));
            Assert.That(plot.Axes.GetLimits().Bottom, Is.Zero, "the y axis starts at zero");
        }
        var lines = set.Loss.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        Assert.That(lines.Select(l => l.LegendText), Is.EqualTo(new[] { "full", "checkpoint", "sbp-0.5" }));
        Assert.That(lines.Select(l => (l.Color, l.LinePattern.Name)).Distinct().Count(), Is.EqualTo(3), "a curve under another stays visible: each mode its own colour and pattern");
        Assert.That(lines.Select(l => l.LinePattern.Name).Distinct().Count(), Is.EqualTo(3), "distinguishable without colour too");

        var bars = set.Memory.GetPlottables().OfType<ScottPlot.Plottables.BarPlot>().ToList();
        Assert.That(bars.Select(b => b.LegendText), Is.EqualTo(new[] { "saved activations (MiB)", "peak memory (MiB)" }));
        Assert.That(bars.All(b => b.Bars.Count == 3), "one bar per mode in each series: full and checkpoint are not drawn at one keep ratio");
        Assert.That(bars[1].Bars.Select(b => b.Label), Is.EqualTo(new[] { "100 (1.00x)", "120 (1.20x)", "60 (0.60x)" }), "peak labelled with its ratio to full backprop");
        set.Memory.GetImage(800, 500);   // ticks are generated when the plot renders
        Assert.That(set.Memory.Axes.Bottom.TickGenerator.Ticks.Select(t => t.Label), Is.EqualTo(new[] { "full", "checkpoint", "sbp-0.5" }));
        var accuracy = set.Accuracy.GetPlottables().OfType<ScottPlot.Plottables.BarPlot>().Single();
        Assert.That(accuracy.Bars.Select(b => b.Label), Is.EqualTo(new[] { "91.0 %", "91.0 %", "90.0 %" }));
        Assert.That(set.Accuracy.Axes.GetLimits().Top, Is.GreaterThanOrEqualTo(100), "accuracy on its whole range");

        // a long run description (compare --seeds) wraps at a comma instead of running off the 800-pixel plot
        const string longRun = "swin-micro-stem on synthetic-actions (1024 train / 1024 held-out clips), 50 epochs, cpu, seeds 1,2,3";
        var title = ComparePlots.PlotModels(rows, detection: false, longRun).Accuracy.Axes.Title.Label.Text;
        Assert.That(title.Split('\n'), Has.Length.EqualTo(3).And.All.Length.LessThanOrEqualTo(90));
        Assert.That(title.Replace(",\n", ", ", StringComparison.Ordinal), Does.EndWith(longRun), "nothing lost");
    }

    // ---- 8. tables and progress ----------------------------------------------------------------------------

    [Test]
    public void Tables_label_each_ratio_and_a_single_run_shows_none()
    {
        var curve = new List<(long, double)> { (1, 1.0) };
        CompareRow full = new("full", "full", 1, 0.9, 1, null, 100 << 20, 80 << 20, 500, 1000, curve);
        CompareRow ckpt = new("checkpoint", "checkpoint", 1, 0.9, 1, null, 130 << 20, 20 << 20, 700, 1000, curve);
        var table = CompareRunner.Table([full, ckpt], detection: false);
        var header = table.Split('\n')[0];
        Assert.That(header, Does.Contain("peak vs full").And.Contain("saved vs full").And.Contain("step vs full"));
        Assert.That(table, Does.Contain("| 1.30x |"), "checkpointing's higher peak has its ratio");
        Assert.That(CompareRunner.Table([ckpt], detection: false), Does.Not.Contain("vs full"), "one run is not compared with itself");
    }

    [Test]
    public void Progress_shows_the_epochs_step_loss_throughput_and_time()
    {
        var line = new ProgressLine("sbp-0.5 epoch 1/2", 64, clipsPerStep: 16, start: 20).Format(30, 1.2345, TimeSpan.FromSeconds(5));
        Assert.That(line, Does.StartWith("30/64 loss 1.235 (epoch mean)"));
        Assert.That(line, Does.Contain("32.0 clips/s").And.Contain("500 ms/step").And.Contain("elapsed 00:05").And.Contain("eta 00:17"));
    }

    // ---- 9. help, defaults, device and version agree with the program ----------------------------------------

    [Test]
    public void The_default_model_is_listed_and_the_readme_shows_the_real_defaults()
    {
        var defaults = new TrainConfig();
        var help = Run("train", "--help").Out;
        Assert.That(help, Does.Contain($"[default: {defaults.Model}]").And.Contain(defaults.Model + ", ").Or.Contain(", " + defaults.Model));
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Engine.sln"))) root = Path.GetDirectoryName(root)!;
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.That(readme, Does.Contain($"sbp compare [--model {defaults.Model}]").And.Contain($"[--epochs {defaults.Epochs}]").And.Contain($"[--batch {defaults.BatchSize}]"));
        Assert.That(readme, Does.Contain("--device cpu|cuda|cuda:N|auto"));
    }

    [Test]
    public void Device_cuda_n_is_accepted_and_explains_itself_without_a_gpu()
    {
        var r = Run(["train", .. Tiny[..^2], "--device", "cuda:1", "--epochs", "1"]);
        if (r.Code == 0) Assert.Ignore("a second GPU is present");
        AssertUserError(r, "sbp train: ");
        Assert.That(r.Err, Does.Not.Contain("not recognized").And.Not.Contain("see `sbp train --help`"), "cuda:N is a device the parser accepts");
    }

    // ---- 10. every kernel profiles ---------------------------------------------------------------------------

    [Test]
    public void Every_listed_kernel_profiles_with_the_example_shape_its_help_shows()
    {
        var list = Run("kernels", "list").Out.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("kernels/", StringComparison.Ordinal)).ToList();
        Assert.That(list, Has.Count.GreaterThan(30));
        var help = Run("kernels", "profile", "--help").Out;
        foreach (var entry in list)
        {
            var shape = KernelRecipes.ExampleShape(entry);
            Assert.That(help, Does.Contain($"sbp kernels profile {entry} --shape {shape}"), entry);
            var r = Run("kernels", "profile", entry, "--shape", shape);
            Assert.That(r.Code, Is.Zero, $"{entry}: {r.Err}");
            Assert.That(r.Out, Does.Contain($"{entry} (kernels/"));
        }
    }
}
