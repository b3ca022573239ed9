using Sbp.PtxSim.Execution;

namespace Sbp.PtxSim.Model;

/// <summary>How the scheduler treats an instruction; Normal ones run their handler and fall through.</summary>
internal enum Flow : byte { Normal, Branch, Exit, Barrier }

/// <summary>Runs one decoded instruction for the lanes in <paramref name="exec"/> (bit i = lane i).</summary>
internal delegate void ExecFn(Machine m, Warp w, Instr i, uint exec);

/// <summary>
/// A pre-decoded instruction. Register operands are slot bases (slot * 32; lane l's value is R[base + l]);
/// immediates, special registers and symbol addresses are also slots (filled once per warp), so every source is a
/// register read. Fields a handler does not use keep their defaults.
/// </summary>
internal sealed class Instr
{
    public int Pc;
    public int Line;
    public required string Text;
    public required string Kind;          // stats key: opcode with modifiers and types
    public int KindId;
    public Flow Flow;
    public ExecFn? Exec;

    public int Guard = -1;                // predicate slot base, -1 = unguarded
    public bool GuardNot;

    public int D = -1, D2 = -1;           // destinations (D2: setp's |q, shfl's |p)
    public int A = -1, B = -1, C = -1, E = -1;
    public bool NotA, NotC;               // "!%p" source predicates
    public int[] DV = [];                 // vector destinations (ld.v2/.v4, mov unpack); -1 = sink '_'
    public int[] AV = [];                 // vector sources (st.v2/.v4, mov pack)
    public ulong DMask = ulong.MaxValue;  // mask to the destination register's width
    public ulong[] DVMask = [];

    public int AddrBase = -1;             // address register slot base, -1 = absolute (symbol or immediate)
    public long Offset;
    public int Size;                      // element size in bytes (memory, cvt source)
    public int Count = 1;                 // vector length
    public bool Signed;

    public int Target = -1;               // branch target pc
    public bool Uni;                      // bra.uni
    public bool Ftz, Sat;
    public int Sub;                       // sub-operation: compare, shfl mode, vote mode, atomic op, rounding ...
    public int Sub2;                      // combining op for setp.and/.or/.xor
    public PtxType T, T2;                 // instruction type(s): cvt dst/src, setp type
}
