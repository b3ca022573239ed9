namespace Sbp.Benchmarks.Quick;

/// <summary>
/// A section of the quick report. New sections (e.g. the SBP training-step rows of the Video Swin
/// model in models/) implement this and are added to <see cref="QuickRunner.Producers"/>.
/// </summary>
public interface IQuickRowProducer
{
    /// <summary>Short name, printed while the section runs.</summary>
    string Name { get; }

    /// <summary>Measures and returns the rows; notes (e.g. "OpenBLAS not found") go in the rows or to <paramref name="notes"/>.</summary>
    IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes);
}

/// <summary>Settings every producer sees.</summary>
public sealed record QuickOptions(int AllThreads, double MinSecondsPerCase);
