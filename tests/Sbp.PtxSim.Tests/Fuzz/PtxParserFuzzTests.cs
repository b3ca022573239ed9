using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Sbp.PtxSim.Tests.Fuzz;

/// <summary>
/// Seeded fuzzing of the PTX parser and decoder with mutated versions of the hand-written kernels
/// (kernels/*.ptx): token deletions, duplications, swaps and replacements, truncations and byte
/// flips. Every call must either parse or throw a <see cref="PtxSimException"/> (parse error or
/// unsupported instruction) within a timeout; anything else (IndexOutOfRange, NullReference,
/// InvalidCast, stack overflow, a hang) is a parser bug.
/// </summary>
public partial class PtxParserFuzzTests
{
    const int MutationsPerFile = 300;
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    static string KernelsFolder([CallerFilePath] string here = "")
    {
        // tests/Sbp.PtxSim.Tests/Fuzz/<this file> -> repository root -> kernels/
        for (var d = new DirectoryInfo(Path.GetDirectoryName(here)!); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return Path.Combine(d.FullName, "kernels");
        Assert.Fail("repository root (Engine.sln) not found above " + here);
        return "";
    }

    public static IEnumerable<string> KernelFiles() =>
        Directory.GetFiles(KernelsFolder(), "*.ptx").Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal)!;

    [GeneratedRegex(@"\s+|[A-Za-z0-9_.%$]+|.", RegexOptions.Singleline)]
    private static partial Regex TokenRegex();

    /// <summary>Kind of mutation and the mutated text.</summary>
    static (string Kind, string Text) Mutate(string text, string[] tokens, int[] words, Random rng)
    {
        var t = (string[])tokens.Clone();
        int Pick() => words[rng.Next(words.Length)];
        switch (rng.Next(7))
        {
            case 0:
            {
                int n = 1 + rng.Next(3);
                for (int i = 0; i < n; i++) t[Pick()] = "";
                return ("delete", string.Concat(t));
            }
            case 1:
            {
                int i = Pick();
                t[i] = t[i] + " " + t[i];
                return ("duplicate", string.Concat(t));
            }
            case 2:
            {
                int i = Pick(), j = Pick();
                (t[i], t[j]) = (t[j], t[i]);
                return ("swap", string.Concat(t));
            }
            case 3:
            {
                int i = Pick();
                t[i] = tokens[Pick()];
                return ("replace", string.Concat(t));
            }
            case 4:
            {
                int i = Pick();
                string[] odd = ["-1", "4294967296", "0x", "1e999", "0f7FC00000", "%r999999999", "[", "]", "{", "}", ";", ",", "\"", "//", "/*", ".reg", "@", "!", ""];
                t[i] = odd[rng.Next(odd.Length)];
                return ("oddtoken", string.Concat(t));
            }
            case 5:
                return ("truncate", text[..rng.Next(text.Length)]);
            default:
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                int n = 1 + rng.Next(4);
                for (int i = 0; i < n; i++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
                return ("byteflip", Encoding.UTF8.GetString(bytes));
            }
        }
    }

    [TestCaseSource(nameof(KernelFiles))]
    public void MutatedKernelsParseOrFailWithAPtxError(string file)
    {
        var text = File.ReadAllText(Path.Combine(KernelsFolder(), file));
        Assert.That(() => PtxModule.Parse(text, file), Throws.Nothing, "the unmutated kernel parses");
        var tokens = TokenRegex().Matches(text).Select(m => m.Value).ToArray();
        var words = Enumerable.Range(0, tokens.Length).Where(i => !string.IsNullOrWhiteSpace(tokens[i])).ToArray();
        var rng = new Random(file.Aggregate(17, (h, c) => unchecked(h * 31 + c)));   // stable per file
        var outcomes = new Dictionary<string, int>();
        for (int k = 0; k < MutationsPerFile; k++)
        {
            var (kind, mutated) = Mutate(text, tokens, words, rng);
            string outcome;
            var task = Task.Run(() =>
            {
                try
                {
                    PtxModule.Parse(mutated, file);
                    return "parsed";
                }
                catch (PtxSimException e)
                {
                    Assert.That(e.Message, Is.Not.Empty);
                    return e.GetType().Name;
                }
            });
            Assert.That(((IAsyncResult)task).AsyncWaitHandle.WaitOne(CallTimeout), Is.True, $"{file} mutation {k} ({kind}) did not finish within {CallTimeout.TotalSeconds} s:\n{mutated}");
            try { outcome = task.Result; }
            catch (AggregateException e)
            {
                Assert.Fail($"{file} mutation {k} ({kind}) crashed the parser with {e.InnerException!.GetType().Name}: {e.InnerException.Message}\n{e.InnerException.StackTrace}\n--- mutated source ---\n{mutated}");
                return;
            }
            outcomes[$"{kind}:{outcome}"] = outcomes.GetValueOrDefault($"{kind}:{outcome}") + 1;
        }
        TestContext.Out.WriteLine($"{file}: {string.Join(", ", outcomes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.That(outcomes.Keys.Any(k => !k.EndsWith(":parsed", StringComparison.Ordinal)), Is.True, "some mutations were rejected");
    }
}
