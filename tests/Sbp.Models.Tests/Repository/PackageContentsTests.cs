using System.Diagnostics;
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Xml.Linq;

namespace Sbp.Models.Tests.Repository;

/// <summary>
/// What the NuGet packages hold, packed here from this build (`dotnet pack --no-build`): Sbp.Engine with
/// every kernels/*.ptx embedded, Sbp.Models depending on it at the same version, the sbp tool; each with its
/// README, license expression, repository commit, XML documentation and a symbols package; no test, benchmark
/// or GPU-kit assembly in any of them.
/// </summary>
[NonParallelizable]
public class PackageContentsTests
{
    static string _root = "", _out = "";
    static string Version => XDocument.Load(Path.Combine(_root, "version.props")).Descendants("Version").Single().Value;

#if DEBUG
    const string Configuration = "Debug";
#else
    const string Configuration = "Release";
#endif

    [OneTimeSetUp]
    public void Pack()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) { _root = d.FullName; break; }
        _out = Directory.CreateTempSubdirectory("sbp-packages-").FullName;
        foreach (var project in new[] { "engine/Sbp.Engine.csproj", "models/Sbp.Models/Sbp.Models.csproj", "models/Sbp.Cli/Sbp.Cli.csproj" })
        {
            var info = new ProcessStartInfo("dotnet", ["pack", Path.Combine(_root, project), "-c", Configuration, "--no-build", "--nologo", "-o", _out])
                { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, $"dotnet pack {project}:\n{stdout.Result}\n{stderr}");
        }
    }

    [OneTimeTearDown]
    public void Clean()
    {
        if (_out != "") Directory.Delete(_out, true);
    }

    static ZipArchive Open(string id, string extension = "nupkg")
    {
        var path = Path.Combine(_out, $"{id}.{Version}.{extension}");
        Assert.That(File.Exists(path), $"{path} was not packed; packed: {string.Join(", ", Directory.GetFiles(_out).Select(Path.GetFileName))}");
        return ZipFile.OpenRead(path);
    }

    static XElement Metadata(ZipArchive package, string id)
    {
        using var stream = package.GetEntry($"{id}.nuspec")!.Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    static XElement? Element(XElement metadata, string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name);

    [TestCase("Sbp.Engine", "lib/net10.0/Sbp.Engine.dll")]
    [TestCase("Sbp.Models", "lib/net10.0/Sbp.Models.dll")]
    [TestCase("sbp", "tools/net10.0/any/sbp.dll")]
    public void Every_package_has_readme_license_repository_and_version(string id, string assembly)
    {
        using var package = Open(id);
        var meta = Metadata(package, id);
        Assert.That(Element(meta, "version")!.Value, Is.EqualTo(Version), "the one version number of version.props");
        Assert.That(Element(meta, "license")?.Value, Is.EqualTo("MIT"));
        Assert.That(Element(meta, "license")!.Attribute("type")!.Value, Is.EqualTo("expression"));
        Assert.That(Element(meta, "readme")?.Value, Is.EqualTo("README.md"));
        var readme = package.GetEntry("README.md");
        Assert.That(readme, Is.Not.Null, "the package README");
        using (var reader = new StreamReader(readme!.Open()))
            Assert.That(reader.ReadToEnd(), Does.StartWith($"# {id}"));
        var repository = Element(meta, "repository");
        Assert.That(repository?.Attribute("type")?.Value, Is.EqualTo("git"));
        Assert.That(repository!.Attribute("commit")?.Value, Does.Match("^[0-9a-f]{40}$"), "Source Link's commit");
        Assert.That(package.GetEntry(assembly), Is.Not.Null, assembly);
        Assert.That(Element(meta, "description")?.Value, Is.Not.Empty);
    }

    [TestCase("Sbp.Engine")]
    [TestCase("Sbp.Models")]
    public void Libraries_ship_xml_documentation_and_symbols(string id)
    {
        using (var package = Open(id))
            Assert.That(package.GetEntry($"lib/net10.0/{id}.xml"), Is.Not.Null, "XML documentation next to the assembly");
        using var symbols = Open(id, "snupkg");
        Assert.That(symbols.GetEntry($"lib/net10.0/{id}.pdb"), Is.Not.Null, "the portable PDB in the symbols package");
    }

    [Test]
    public void The_engine_embeds_every_ptx_kernel_module()
    {
        using var package = Open("Sbp.Engine");
        using var copy = new MemoryStream();
        using (var dll = package.GetEntry("lib/net10.0/Sbp.Engine.dll")!.Open()) dll.CopyTo(copy);
        copy.Position = 0;
        using var pe = new PEReader(copy);
        var reader = pe.GetMetadataReader();
        var resources = reader.ManifestResources.Select(h => reader.GetString(reader.GetManifestResource(h).Name)).ToHashSet();
        var kernels = Directory.GetFiles(Path.Combine(_root, "kernels"), "*.ptx").Select(f => $"kernels/{Path.GetFileName(f)}").ToList();
        Assert.That(kernels, Is.Not.Empty);
        Assert.That(kernels, Is.SubsetOf(resources));
    }

    [Test]
    public void The_models_library_depends_on_the_engine_at_the_same_version()
    {
        using var package = Open("Sbp.Models");
        var dependencies = Element(Metadata(package, "Sbp.Models"), "dependencies")!.Descendants().Where(e => e.Name.LocalName == "dependency").ToList();
        Assert.That(dependencies.Single(d => d.Attribute("id")!.Value == "Sbp.Engine").Attribute("version")!.Value, Is.EqualTo(Version));
        Assert.That(dependencies.Select(d => d.Attribute("id")!.Value), Has.None.StartsWith("ScottPlot").And.None.EqualTo("System.CommandLine"),
            "the library has no plotting or command-line packages");
    }

    [Test]
    public void The_tool_runs_as_sbp()
    {
        using var package = Open("sbp");
        var settings = package.GetEntry("tools/net10.0/any/DotnetToolSettings.xml");
        Assert.That(settings, Is.Not.Null);
        using var stream = settings!.Open();
        var command = XDocument.Load(stream).Descendants("Command").Single();
        Assert.That((command.Attribute("Name")!.Value, command.Attribute("EntryPoint")!.Value), Is.EqualTo(("sbp", "sbp.dll")));
    }

    [TestCase("Sbp.Engine")]
    [TestCase("Sbp.Models")]
    [TestCase("sbp")]
    public void No_test_benchmark_or_kit_assembly_and_nothing_for_the_user_to_delete(string id)
    {
        using var package = Open(id);
        var files = package.Entries.Select(e => e.FullName).ToList();
        Assert.That(files, Has.None.Match(@"(Tests|Benchmarks|GpuKit|OpCases|CudaSim|nunit|NUnit|BenchmarkDotNet)[^/]*\.dll$"));
        Assert.That(files, Has.None.StartsWith("content/").And.None.StartsWith("contentFiles/").And.None.StartsWith("build/").And.None.StartsWith("buildTransitive/"),
            "no files copied into, or targets run in, the user's project");
    }
}
