using System.Buffers.Binary;
using System.Text;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Makes a shared library's need of one symbol version weak, in place. TorchSharp's libLibTorchSharp.so asks for
/// GLIBCXX_3.4.32 (only for <c>std::ios_base_library_init</c>, which older libstdc++ runs implicitly), and Debian 12's
/// libstdc++ stops at 3.4.30, so the loader refuses the library. With VER_FLG_WEAK on the version need and a weak
/// binding on the symbols of that version, the loader accepts it and the symbol resolves to null, which is harmless.
/// </summary>
internal static class ElfWeakVersion
{
    const uint ShtDynsym = 11, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;
    const ushort VerFlgWeak = 2;
    const byte StbWeak = 2;

    /// <summary>Finds <paramref name="fileName"/> under <paramref name="root"/> and weakens <paramref name="version"/> in each copy.</summary>
    public static void PatchUnder(string root, string fileName, string version)
    {
        if (!OperatingSystem.IsLinux()) return;   // only the Linux loader checks symbol versions this way
        foreach (var path in Directory.EnumerateFiles(root, fileName, SearchOption.AllDirectories))
        {
            var result = Patch(path, version);
            if (result != "") Console.WriteLine($"[elf] {Path.GetRelativePath(root, path)}: {result}");
        }
    }

    /// <summary>Weakens the version need; returns what it did ("" when nothing was needed).</summary>
    public static string Patch(string path, string version)
    {
        var b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException($"{path}: not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new InvalidDataException($"{path}: only 64-bit little-endian ELF is handled");

        var sections = ReadSections(b);
        var verneed = sections.FirstOrDefault(s => s.Type == ShtGnuVerneed);
        var dynsym = sections.FirstOrDefault(s => s.Type == ShtDynsym);
        var versym = sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
        if (verneed is null || dynsym is null || versym is null) return "";
        var dynstr = sections[(int)dynsym.Link];

        // Walk the Verneed list and its Vernaux entries looking for the version by name.
        int changedFlags = 0, target = -1;
        long off = (long)verneed.Offset;
        while (true)
        {
            ushort cnt = U16(b, off + 2);
            uint aux = U32(b, off + 8), next = U32(b, off + 12);
            long a = off + aux;
            for (int i = 0; i < cnt; i++)
            {
                ushort flags = U16(b, a + 4), other = U16(b, a + 6);
                uint name = U32(b, a + 8), anext = U32(b, a + 12);
                if (CString(b, (long)dynstr.Offset + name) == version)
                {
                    target = other;
                    if ((flags & VerFlgWeak) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan((int)(a + 4)), (ushort)(flags | VerFlgWeak));
                        changedFlags++;
                    }
                }
                a += anext;
            }
            if (next == 0) break;
            off += next;
        }
        if (target < 0) return "";   // the library does not need this version: nothing to do

        // Symbols whose version index is the target become weak (st_info high nibble is the binding).
        var weakened = new List<string>();
        long count = (long)dynsym.Size / 24;
        for (long i = 0; i < count; i++)
        {
            long so = (long)dynsym.Offset + i * 24;
            int ver = U16(b, (long)versym.Offset + i * 2) & 0x7fff;
            if (ver != target) continue;
            byte info = b[so + 4];
            if (info >> 4 == StbWeak) continue;
            b[so + 4] = (byte)((StbWeak << 4) | (info & 0xf));
            weakened.Add(CString(b, (long)dynstr.Offset + U32(b, so)));
        }
        if (changedFlags == 0 && weakened.Count == 0) return "";

        // Write beside it and rename, so a half-written library is never left in place.
        var tmp = path + ".weak-tmp";
        File.WriteAllBytes(tmp, b);
        File.Move(tmp, path, overwrite: true);
        return $"made {version} weak (version need: {changedFlags}, symbols: {string.Join(", ", weakened)})";
    }

    sealed record Section(uint Type, ulong Offset, ulong Size, uint Link);

    static List<Section> ReadSections(byte[] b)
    {
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(0x28));
        ushort shentsize = U16(b, 0x3A), shnum = U16(b, 0x3C);
        var list = new List<Section>(shnum);
        for (int i = 0; i < shnum; i++)
        {
            long s = (long)shoff + (long)i * shentsize;
            list.Add(new Section(U32(b, s + 4), BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)(s + 24))),
                BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)(s + 32))), U32(b, s + 40)));
        }
        return list;
    }

    static ushort U16(byte[] b, long at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)at));
    static uint U32(byte[] b, long at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at));

    static string CString(byte[] b, long at)
    {
        int end = Array.IndexOf(b, (byte)0, (int)at);
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
