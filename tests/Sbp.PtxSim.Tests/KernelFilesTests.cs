using System.Runtime.CompilerServices;

namespace Sbp.PtxSim.Tests;

/// <summary>Every hand-written kernel in kernels/*.ptx parses and decodes (every instruction it uses is implemented).</summary>
public class KernelFilesTests
{
    /// <summary>The repository's kernels/ folder, found from this source file (build outputs may live anywhere).</summary>
    private static string? KernelsFolder([CallerFilePath] string source = "")
    {
        for (var d = new FileInfo(source).Directory; d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln")) && Directory.Exists(Path.Combine(d.FullName, "kernels")))
                return Path.Combine(d.FullName, "kernels");
        return null;
    }

    [Test]
    public void EveryKernelFileParses()
    {
        var folder = KernelsFolder();
        Assert.That(folder, Is.Not.Null, "kernels/ folder not found above this test's source file");
        var files = Directory.GetFiles(folder!, "*.ptx").OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) Assert.Ignore("no kernels/*.ptx yet");
        var failures = new List<string>();
        var kinds = new SortedSet<string>(StringComparer.Ordinal);
        int entries = 0;
        foreach (var f in files)
        {
            try
            {
                var m = PtxModule.Parse(File.ReadAllText(f), Path.GetFileName(f));
                entries += m.EntryNames.Count;
                foreach (var e in m.EntryNames) kinds.UnionWith(m.InstructionKinds(e));
            }
            catch (PtxSimException ex)
            {
                failures.Add(ex.Message);
            }
        }
        TestContext.Out.WriteLine($"{files.Length} files, {entries} entries, {kinds.Count} instruction kinds: {string.Join(" ", kinds)}");
        Assert.That(failures, Is.Empty, string.Join(Environment.NewLine + Environment.NewLine, failures));
    }
}
