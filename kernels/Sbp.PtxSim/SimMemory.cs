using System.Runtime.InteropServices;

namespace Sbp.PtxSim;

/// <summary>
/// Global memory of the simulated device: a set of allocations, each backed by its own byte array.
/// Addresses are non-zero, 256-byte aligned and never reused (freed ranges stay known, so a use after free is
/// named as such); a guard gap of at least 4 KiB separates allocations, so a run past the end of one never lands
/// in the next. Fresh allocations are filled with 0xFF bytes (NaN as float, -1 as integer), like uninitialised
/// device memory, so a kernel that reads what nobody wrote shows it. Not thread-safe.
/// </summary>
public sealed class SimMemory
{
    private const ulong BaseAddress = 0x7F00_0000_0000UL;
    private const ulong Guard = 4096;
    private readonly List<Allocation> _live = [];      // sorted by Base
    private readonly List<Allocation> _freed = [];
    private ulong _next = BaseAddress;
    private Allocation? _lastHit;

    /// <summary>Bytes in live allocations.</summary>
    public long BytesInUse { get; private set; }

    /// <summary>Number of live allocations.</summary>
    public int LiveAllocations => _live.Count;

    /// <summary>Allocates <paramref name="bytes"/> bytes (0 is allowed: no access is valid) and returns the device address.</summary>
    public ulong Allocate(long bytes)
    {
        if (bytes < 0 || bytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"SimMemory.Allocate: size must be in [0, {Array.MaxLength}] bytes.");
        var a = new Allocation(_next, bytes, new byte[bytes]);
        a.Data.AsSpan().Fill(0xFF);
        _next = AlignUp(_next + (ulong)bytes, 256) + Guard;
        _live.Add(a);                               // addresses only grow: the list stays sorted
        BytesInUse += bytes;
        return a.Base;
    }

    /// <summary>Frees a live allocation by its base address.</summary>
    public void Free(ulong address)
    {
        int i = IndexOfBase(address);
        if (i < 0)
        {
            var freed = _freed.Find(f => f.Base == address);
            throw new ArgumentException(freed is not null
                ? $"SimMemory.Free: 0x{address:X} was already freed (double free)."
                : $"SimMemory.Free: 0x{address:X} is not the base of a live allocation. {Describe(address, 1)}", nameof(address));
        }
        var a = _live[i];
        _live.RemoveAt(i);
        _freed.Add(a);
        BytesInUse -= a.Size;
        if (ReferenceEquals(_lastHit, a)) _lastHit = null;
    }

    /// <summary>Copies host data to device memory at <paramref name="address"/> (anywhere inside one live allocation).</summary>
    public void Write<T>(ulong address, ReadOnlySpan<T> data) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data);
        bytes.CopyTo(HostSpan(address, bytes.Length, "Write"));
    }

    /// <summary>Copies device memory at <paramref name="address"/> (inside one live allocation) to host memory.</summary>
    public void Read<T>(ulong address, Span<T> data) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data);
        HostSpan(address, bytes.Length, "Read").CopyTo(bytes);
    }

    /// <summary>Fills <paramref name="bytes"/> bytes at <paramref name="address"/> with <paramref name="value"/> (like cudaMemset).</summary>
    public void Fill(ulong address, long bytes, byte value)
    {
        if (bytes < 0 || bytes > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(bytes));
        HostSpan(address, (int)bytes, "Fill").Fill(value);
    }

    private Span<byte> HostSpan(ulong address, int length, string what)
    {
        if (!TryResolve(address, length, out var a, out int offset))
            throw new ArgumentException($"SimMemory.{what}: {length} bytes at 0x{address:X} are not inside one live allocation. {Describe(address, length)}", nameof(address));
        return a.Data.AsSpan(offset, length);
    }

    /// <summary>Finds the live allocation holding [address, address + size).</summary>
    internal bool TryResolve(ulong address, int size, out Allocation allocation, out int offset)
    {
        var a = _lastHit;
        if (a is not null && a.Size >= size && address >= a.Base && address - a.Base <= (ulong)(a.Size - size))
        {
            allocation = a;
            offset = (int)(address - a.Base);
            return true;
        }
        int lo = 0, hi = _live.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            var m = _live[mid];
            if (address < m.Base) hi = mid - 1;
            else if (address - m.Base >= (ulong)Math.Max(m.Size, 1)) lo = mid + 1;
            else
            {
                if (address - m.Base + (ulong)size > (ulong)m.Size) break;
                _lastHit = m;
                allocation = m;
                offset = (int)(address - m.Base);
                return true;
            }
        }
        allocation = null!;
        offset = 0;
        return false;
    }

    /// <summary>A sentence about where [address, address + size) lies relative to the allocations.</summary>
    internal string Describe(ulong address, int size)
    {
        foreach (var f in _freed)
            if (address >= f.Base && address < f.Base + (ulong)Math.Max(f.Size, 1))
                return $"It is inside an allocation that was freed: 0x{f.Base:X} ({f.Size} bytes), offset {address - f.Base}.";
        Allocation? best = null;
        ulong bestDist = ulong.MaxValue;
        foreach (var a in _live)
        {
            ulong end = a.Base + (ulong)a.Size;
            ulong d = address < a.Base ? a.Base - address : address >= end ? address - end : 0;
            if (d < bestDist) { bestDist = d; best = a; }
        }
        if (best is null) return "There are no live allocations.";
        ulong bEnd = best.Base + (ulong)best.Size;
        string rel = address < best.Base ? $"{best.Base - address} bytes before its start"
            : address >= bEnd ? $"{address - bEnd} bytes past its end"
            : $"at offset {address - best.Base}, running {address - best.Base + (ulong)size - (ulong)best.Size} bytes past its end";
        return $"Nearest allocation: 0x{best.Base:X} ({best.Size} bytes, ends at 0x{bEnd:X}); the access is {rel}.";
    }

    private int IndexOfBase(ulong address)
    {
        int lo = 0, hi = _live.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (_live[mid].Base == address) return mid;
            if (_live[mid].Base < address) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    private static ulong AlignUp(ulong v, ulong a) => (v + a - 1) & ~(a - 1);

    internal sealed class Allocation(ulong @base, long size, byte[] data)
    {
        public readonly ulong Base = @base;
        public readonly long Size = size;
        public readonly byte[] Data = data;
    }
}
