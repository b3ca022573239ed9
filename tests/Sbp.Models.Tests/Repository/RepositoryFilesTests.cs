using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Sbp.Models.Tests.Repository;

/// <summary>
/// What the repository's files promise each other: every document the code and docs cite exists (with
/// the sections cited), and no script falls back to a package mirror's address written into it.
/// </summary>
public partial class RepositoryFilesTests
{
    static string Root()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return d.FullName;
        Assert.Fail($"repository root (Engine.sln) not found above {AppContext.BaseDirectory}");
        return "";
    }

    /// <summary>Source, script and documentation files of the repository (no build outputs, no results).</summary>
    static IEnumerable<string> Files(string root, params string[] patterns) =>
        patterns.SelectMany(p => Directory.EnumerateFiles(root, p, SearchOption.AllDirectories))
            .Where(f => !Regex.IsMatch(f.Replace('\\', '/'), @"/(bin|obj|\.git|TestResults|results)/"));

    [GeneratedRegex(@"docs/([A-Za-z0-9_-]+\.md)(?: section (\d+))?")]
    private static partial Regex Citation();

    [Test]
    public void Every_cited_document_and_section_exists()
    {
        var root = Root();
        var missing = new List<string>();
        foreach (var file in Files(root, "*.cs", "*.md", "*.sh", "*.ps1", "bench", "run"))
            foreach (Match m in Citation().Matches(File.ReadAllText(file)))
            {
                var doc = Path.Combine(root, "docs", m.Groups[1].Value);
                string where = $"{Path.GetRelativePath(root, file)} cites {m.Value}";
                if (!File.Exists(doc)) missing.Add($"{where}: no such file");
                else if (m.Groups[2].Success && !File.ReadLines(doc).Any(l => l.StartsWith($"## {m.Groups[2].Value}.", StringComparison.Ordinal)))
                    missing.Add($"{where}: the document has no section \"## {m.Groups[2].Value}.\"");
            }
        Assert.That(missing, Is.Empty, string.Join("\n", missing));
    }

    [GeneratedRegex(@"\]\((?<target>[^)\s#]+)(?:#[^)]*)?\)")]
    private static partial Regex MarkdownLink();

    [Test]
    public void Every_relative_link_in_the_documentation_resolves()
    {
        var root = Root();
        var broken = new List<string>();
        foreach (var file in Files(root, "*.md"))
            foreach (Match m in MarkdownLink().Matches(File.ReadAllText(file)))
            {
                var target = m.Groups["target"].Value;
                if (Regex.IsMatch(target, @"^[a-z]+:")) continue;   // https:, mailto: and the like
                var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, Uri.UnescapeDataString(target)));
                if (!File.Exists(path) && !Directory.Exists(path))
                    broken.Add($"{Path.GetRelativePath(root, file)} links to {target}: no such file or folder");
            }
        Assert.That(broken, Is.Empty, string.Join("\n", broken));
    }

    [Test]
    public void No_script_carries_a_package_mirror_address()
    {
        var root = Root();
        var offenders = Files(root, "*.sh", "*.ps1", "bench", "run")
            .Where(f => Regex.IsMatch(File.ReadAllText(f), @"(https?|ftp)://[A-Za-z0-9.-]+\.(org|com|net|edu)/(debian|ubuntu|nuget|v3)"))
            .Select(f => Path.GetRelativePath(root, f)).ToList();
        Assert.That(offenders, Is.Empty, "scripts must read mirrors from the machine's configuration");
    }

    static (int Code, string Out, string Err) Mirror(string aptEtc)
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(Root(), "kernels", "debian-mirror.sh")])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.Environment["SBP_APT_ETC"] = aptEtc;
        psi.Environment.Remove("SBP_DEBIAN_MIRROR");
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd(), e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, o.Trim(), e);
    }

    [Test]
    public void The_mirror_comes_from_apt_configuration_or_the_script_fails_clearly()
    {
        var etc = Directory.CreateTempSubdirectory("sbp-apt-").FullName;
        try
        {
            var none = Mirror(etc);
            Assert.That(none.Code, Is.Not.Zero);
            Assert.That(none.Err, Does.Contain("no Debian mirror found").And.Contain("SBP_DEBIAN_MIRROR"));
            Assert.That(none.Out, Is.Empty);

            Directory.CreateDirectory(Path.Combine(etc, "sources.list.d"));
            File.WriteAllText(Path.Combine(etc, "sources.list"), "deb http://mirror.example/debian-security bookworm-security main\ndeb http://mirror.example/debian bookworm main\n");
            Assert.That(Mirror(etc), Is.EqualTo((0, "http://mirror.example/debian", "")), "one-line form, the non-security entry");

            File.WriteAllText(Path.Combine(etc, "sources.list.d", "debian.sources"),
                "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm\nComponents: main\n");
            Assert.That(Mirror(etc).Out, Is.EqualTo("http://deb822.example/debian"), "deb822 first");
        }
        finally
        {
            Directory.Delete(etc, true);
        }
    }
}
