using System.Runtime.InteropServices;

namespace Sbp.PtxSim.Tests.Support;

/// <summary>A simulated device for one test: memory, simulator, upload / download helpers and PTX templates.</summary>
internal sealed class Harness
{
    public const string Header = ".version 7.8\n.target sm_80\n.address_size 64\n";

    public SimMemory Memory { get; } = new();
    public PtxSimulator Sim { get; }

    public Harness() => Sim = new PtxSimulator(Memory);

    public ulong Upload<T>(T[] data) where T : unmanaged
    {
        ulong a = Memory.Allocate((long)data.Length * Marshal.SizeOf<T>());
        Memory.Write<T>(a, data);
        return a;
    }

    public ulong Alloc<T>(int count) where T : unmanaged => Memory.Allocate((long)count * Marshal.SizeOf<T>());

    public T[] Download<T>(ulong address, int count) where T : unmanaged
    {
        var r = new T[count];
        Memory.Read<T>(address, r);
        return r;
    }

    public LaunchStats Run(string ptx, string entry, Dim3 grid, Dim3 block, uint dynamicShared, params KernelArg[] args) =>
        Sim.Launch(PtxModule.Parse(ptx, "test.ptx"), entry, grid, block, dynamicShared, args);

    /// <summary>
    /// One thread per element: loads a[tid] into %r1 / %f1 and b[tid] into %r2 / %f2 (as bits), runs the body,
    /// stores %r3 to out[tid]. Registers: %p0..7, %r0..31 (.b32), %rd0..15 (.b64), %f0..31 (.f32); %r0 = tid; module-level shared sh[1024].
    /// </summary>
    public static string Elementwise(string body) => Header + $$"""
        .shared .align 16 .b8 sh[1024];
        .visible .entry k(.param .u64 p_out, .param .u64 p_a, .param .u64 p_b)
        {
            .reg .pred %p<8>;
            .reg .b16 %h<8>;
            .reg .b32 %r<32>;
            .reg .b64 %rd<16>;
            .reg .f32 %f<32>;
            ld.param.u64 %rd1, [p_out];
            ld.param.u64 %rd2, [p_a];
            ld.param.u64 %rd3, [p_b];
            mov.u32 %r0, %tid.x;
            mul.wide.u32 %rd4, %r0, 4;
            add.s64 %rd5, %rd2, %rd4;
            ld.global.b32 %r1, [%rd5];
            add.s64 %rd6, %rd3, %rd4;
            ld.global.b32 %r2, [%rd6];
            mov.b32 %f1, %r1;
            mov.b32 %f2, %r2;
        {{body}}
            add.s64 %rd7, %rd1, %rd4;
            st.global.b32 [%rd7], %r3;
            ret;
        }
        """;

    /// <summary>Runs <see cref="Elementwise"/> over a and b (same length, at most 1024) and returns out.</summary>
    public uint[] RunElementwise(string body, uint[] a, uint[] b)
    {
        Assert.That(b, Has.Length.EqualTo(a.Length));
        ulong pa = Upload(a), pb = Upload(b), po = Alloc<uint>(a.Length);
        Run(Elementwise(body), "k", new Dim3(1), new Dim3((uint)a.Length), 0, KernelArg.Ptr(po), KernelArg.Ptr(pa), KernelArg.Ptr(pb));
        return Download<uint>(po, a.Length);
    }

    public int[] RunElementwise(string body, int[] a, int[] b) =>
        [.. RunElementwise(body, a.Select(x => (uint)x).ToArray(), b.Select(x => (uint)x).ToArray()).Select(x => (int)x)];

    public float[] RunElementwise(string body, float[] a, float[] b) =>
        [.. RunElementwise(body, a.Select(BitConverter.SingleToUInt32Bits).ToArray(), b.Select(BitConverter.SingleToUInt32Bits).ToArray())
            .Select(BitConverter.UInt32BitsToSingle)];

    /// <summary>Bits of a float result for exact comparisons (NaN payloads aside).</summary>
    public static uint Bits(float f) => BitConverter.SingleToUInt32Bits(f);
}
