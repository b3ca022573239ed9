namespace Sbp.Benchmarks.Quick;

/// <summary>
/// One measured line of the quick report: a group ("sgemm", "conv3d", "gather", ...), the case,
/// the value and its unit, optionally a reference value (e.g. OpenBLAS or a plain copy) and a note.
/// </summary>
public sealed record QuickRow(string Group, string Case, double Value, string Unit,
    double? Reference = null, string? ReferenceName = null, string? Note = null)
{
    /// <summary>Value / Reference, when there is a reference.</summary>
    public double? Ratio => Reference is > 0 ? Value / Reference : null;
}
