namespace Sbp.PtxSim;

/// <summary>
/// An error found while parsing or running PTX. Where it is known, the message and the properties name the
/// kernel, the block and thread, the PTX source line and the instruction text.
/// </summary>
public class PtxSimException : Exception
{
    public PtxSimException(string message)
        : base(message)
    {
        Kernel = string.Empty;
        Instruction = string.Empty;
        SourceName = string.Empty;
    }

    public PtxSimException(string message, PtxLocation where)
        : base(message + where.Describe())
    {
        Kernel = where.Kernel;
        Block = where.Block;
        Thread = where.Thread;
        Line = where.Line;
        Instruction = where.Instruction;
        SourceName = where.SourceName;
        HasThread = where.HasThread;
    }

    /// <summary>The entry (kernel) name; empty when not known (module-level errors).</summary>
    public string Kernel { get; }

    /// <summary>%ctaid of the offending thread (default when <see cref="HasThread"/> is false).</summary>
    public Dim3 Block { get; }

    /// <summary>%tid of the offending thread (default when <see cref="HasThread"/> is false).</summary>
    public Dim3 Thread { get; }

    /// <summary>True when the error happened while a thread was running (Block and Thread are meaningful).</summary>
    public bool HasThread { get; }

    /// <summary>1-based line of the PTX source; 0 when not known.</summary>
    public int Line { get; }

    /// <summary>The PTX source text of the offending instruction or line (trimmed).</summary>
    public string Instruction { get; }

    /// <summary>The source name given to <see cref="PtxModule.Parse"/>.</summary>
    public string SourceName { get; }
}

/// <summary>Malformed PTX, or PTX outside the supported subset that is not a single instruction.</summary>
public sealed class PtxParseException : PtxSimException
{
    public PtxParseException(string message, PtxLocation where) : base(message, where) { }
}

/// <summary>An out-of-bounds, freed or misaligned global or shared memory access.</summary>
public sealed class PtxMemoryViolationException : PtxSimException
{
    public PtxMemoryViolationException(string message, PtxLocation where) : base(message, where) { }
}

/// <summary>Conflicting shared-memory accesses by different warps with no bar.sync between them.</summary>
public sealed class PtxRaceException : PtxSimException
{
    public PtxRaceException(string message, PtxLocation where) : base(message, where) { }
}

/// <summary>An opcode, type or modifier the simulator does not implement (refused at parse time when possible).</summary>
public sealed class PtxUnsupportedInstructionException : PtxSimException
{
    public PtxUnsupportedInstructionException(string message, PtxLocation where) : base(message, where) { }
}

/// <summary>Threads stuck at barriers that the other threads of the block never reach.</summary>
public sealed class PtxDeadlockException : PtxSimException
{
    public PtxDeadlockException(string message, PtxLocation where) : base(message, where) { }
}

/// <summary>Where an error happened: kernel, block, thread, PTX line and text.</summary>
public readonly record struct PtxLocation(
    string SourceName, string Kernel, int Line, string Instruction, bool HasThread = false, Dim3 Block = default, Dim3 Thread = default)
{
    internal string Describe()
    {
        var s = new System.Text.StringBuilder();
        s.Append(Environment.NewLine).Append("  at ");
        s.Append(string.IsNullOrEmpty(SourceName) ? "<ptx>" : SourceName);
        if (Line > 0) s.Append(':').Append(Line);
        if (!string.IsNullOrEmpty(Kernel)) s.Append(", kernel ").Append(Kernel);
        if (HasThread) s.Append(", block ").Append(Block).Append(", thread ").Append(Thread);
        if (!string.IsNullOrEmpty(Instruction)) s.Append(Environment.NewLine).Append("  > ").Append(Instruction);
        return s.ToString();
    }
}
