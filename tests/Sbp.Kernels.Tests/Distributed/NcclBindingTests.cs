using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Sbp.Distributed;
using Sbp.Distributed.Nccl;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Distributed;

/// <summary>
/// Our NCCL bindings against nccl.h's own text: the enum values, the 128-byte unique id, the 2.14 ncclConfig_t
/// layout, and every function pointer's parameter and return types against the C prototype of its export. No
/// library is needed (the machine has no GPU); the GPU kit runs the bindings for real when libnccl.so.2 is there.
/// </summary>
public sealed unsafe partial class NcclBindingTests
{
    /// <summary>
    /// NVIDIA/nccl src/nccl.h.in at tag v2.30.7-1 (identical on master as of this writing): the lines below, verbatim
    /// except that the comments inside ncclRedOp_t are left out.
    /// </summary>
    const string Header = """
        #define NCCL_UNIQUE_ID_BYTES 128
        typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

        /* Error type */
        typedef enum { ncclSuccess                 =  0,
                       ncclUnhandledCudaError      =  1,
                       ncclSystemError             =  2,
                       ncclInternalError           =  3,
                       ncclInvalidArgument         =  4,
                       ncclInvalidUsage            =  5,
                       ncclRemoteError             =  6,
                       ncclInProgress              =  7,
                       ncclTimeout                 =  8,
                       ncclNumResults              =  9 } ncclResult_t;

        #define NCCL_API_MAGIC 0xcafebeef

        /* Reduction operation selector */
        typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
        typedef enum { ncclSum        = 0,
                       ncclProd       = 1,
                       ncclMax        = 2,
                       ncclMin        = 3,
                       ncclAvg        = 4,
                       ncclNumOps     = 5,
                       ncclMaxRedOp   = 0x7fffffff>>(32-8*sizeof(ncclRedOp_dummy_t))
                     } ncclRedOp_t;

        /* Data types */
        typedef enum { ncclInt8       = 0, ncclChar       = 0,
                       ncclUint8      = 1,
                       ncclInt32      = 2, ncclInt        = 2,
                       ncclUint32     = 3,
                       ncclInt64      = 4,
                       ncclUint64     = 5,
                       ncclFloat16    = 6, ncclHalf       = 6,
                       ncclFloat32    = 7, ncclFloat      = 7,
                       ncclFloat64    = 8, ncclDouble     = 8,
                       ncclBfloat16   = 9,
                       ncclFloat8e4m3 = 10,
                       ncclFloat8e5m2 = 11,
                       ncclNumTypes   = 12
        } ncclDataType_t;

        ncclResult_t  ncclGetVersion(int *version);
        ncclResult_t  ncclGetUniqueId(ncclUniqueId* uniqueId);
        ncclResult_t  ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config);
        ncclResult_t  ncclCommFinalize(ncclComm_t comm);
        ncclResult_t  ncclCommDestroy(ncclComm_t comm);
        ncclResult_t  ncclCommAbort(ncclComm_t comm);
        const char*  ncclGetErrorString(ncclResult_t result);
        const char*  ncclGetLastError(ncclComm_t comm);
        ncclResult_t  ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError);
        ncclResult_t  ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
            ncclComm_t comm, cudaStream_t stream);
        ncclResult_t  ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
            ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
        """;

    /// <summary>NVIDIA/nccl src/nccl.h.in at tag v2.14.3-1, verbatim: the first ncclConfig_t (2.14 introduced it with nonblocking communicators).</summary>
    const string Config214 = """
        typedef struct ncclConfig_v21400 {
          /* attributes that users should never touch. */
          size_t size;
          unsigned int magic;
          unsigned int version;
          /* attributes that users are able to customize. */
          int blocking;
        } ncclConfig_t;
        """;

    [GeneratedRegex(@"typedef enum \{(?<body>[^}]*)\}\s*(?<name>\w+);")]
    private static partial Regex EnumBlock();

    [GeneratedRegex(@"nccl(?<name>\w+)\s*=\s*(?<value>\d+)\b(?!\s*>>)")]
    private static partial Regex EnumMember();

    [GeneratedRegex(@"^(?<ret>(const )?\w+\*?)\s+(?<name>nccl\w+)\((?<params>[^)]*)\);", RegexOptions.Multiline)]
    private static partial Regex Prototype();

    /// <summary>name → value of a typedef enum of the header (aliases and the Num*/Max* counters left out).</summary>
    static Dictionary<string, int> HeaderEnum(string name)
    {
        var body = EnumBlock().Matches(Header).Single(m => m.Groups["name"].Value == name).Groups["body"].Value;
        var members = new Dictionary<string, int>();
        foreach (Match m in EnumMember().Matches(body))
        {
            string member = m.Groups["name"].Value;
            int value = int.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (member.StartsWith("Num", StringComparison.Ordinal) || member == "MaxRedOp") continue;   // counters and the largest value
            if (members.ContainsValue(value)) continue;   // ncclChar, ncclInt, ncclHalf, ncclFloat, ncclDouble: aliases
            members[member] = value;
        }
        return members;
    }

    static Dictionary<string, int> Ours<TEnum>() where TEnum : struct, Enum =>
        Enum.GetValues<TEnum>().ToDictionary(v => v.ToString(), v => Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture));

    [Test]
    public void EnumsHaveTheHeadersNamesAndValues()
    {
        Assert.That(Ours<NcclResult>(), Is.EquivalentTo(HeaderEnum("ncclResult_t")), "ncclResult_t");
        Assert.That(Ours<NcclDataType>(), Is.EquivalentTo(HeaderEnum("ncclDataType_t")), "ncclDataType_t");
        Assert.That(Ours<NcclRedOp>(), Is.EquivalentTo(HeaderEnum("ncclRedOp_t")), "ncclRedOp_t");
        Assert.That((int)NcclDataType.Float16, Is.EqualTo(6));
        Assert.That((int)NcclDataType.Float32, Is.EqualTo(7));
        Assert.That((int)NcclDataType.Bfloat16, Is.EqualTo(9));
        Assert.That((int)NcclRedOp.Sum, Is.EqualTo(0));
        Assert.That((int)NcclRedOp.Avg, Is.EqualTo(4));
        Assert.That((int)NcclResult.InProgress, Is.EqualTo(7));
    }

    [Test]
    public void TheUniqueIdIs128BytesAndTheConfigHasThe214Layout()
    {
        int idBytes = int.Parse(Regex.Match(Header, @"#define NCCL_UNIQUE_ID_BYTES (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(idBytes, Is.EqualTo(128));
        Assert.That(sizeof(NcclUniqueId), Is.EqualTo(idBytes));
        Assert.That(Marshal.SizeOf<NcclUniqueId>(), Is.EqualTo(idBytes));
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        Assert.That(NcclUniqueId.FromBytes(bytes).ToBytes(), Is.EqualTo(bytes), "the id's bytes round-trip");

        // size_t size at 0, unsigned magic at 8, unsigned version at 12, int blocking at 16; 24 bytes with the tail padding.
        var fields = Regex.Matches(Config214, @"^\s*(size_t|unsigned int|int) (\w+);", RegexOptions.Multiline).Select(m => m.Groups[2].Value).ToArray();
        Assert.That(fields, Is.EqualTo(new[] { "size", "magic", "version", "blocking" }));
        Assert.That(typeof(NcclConfig).GetFields(BindingFlags.Instance | BindingFlags.Public).Select(f => f.Name.ToLowerInvariant()), Is.EqualTo(fields), "the C# fields in the header's order");
        Assert.That(new[] { "Size", "Magic", "Version", "Blocking" }.Select(f => (int)Marshal.OffsetOf<NcclConfig>(f)), Is.EqualTo(new[] { 0, 8, 12, 16 }));
        Assert.That(sizeof(NcclConfig), Is.EqualTo(24));
        Assert.That(typeof(NcclConfig).GetField("Size")!.FieldType, Is.EqualTo(typeof(nuint)), "size_t");

        uint magic = Convert.ToUInt32(Regex.Match(Header, @"#define NCCL_API_MAGIC (0x[0-9a-f]+)").Groups[1].Value, 16);
        var config = NcclConfig.Create(blocking: false);
        Assert.That(config.Magic, Is.EqualTo(magic).And.EqualTo(0xcafebeef));
        Assert.That(config.Size, Is.EqualTo((nuint)24));
        Assert.That(config.Version, Is.EqualTo(21400u), "NCCL_VERSION(2, 14, 0): the fields after blocking take NCCL's defaults");
        Assert.That(config.Blocking, Is.Zero, "nonblocking, so ncclCommAbort can always stop it");
        Assert.That(NcclConfig.Create(blocking: true).Blocking, Is.EqualTo(1));
    }

    /// <summary>The C# type each C type of the prototypes maps to (handles are nint, buffers void*, C strings byte*).</summary>
    static Type Map(string c) => c switch
    {
        "ncclResult_t" => typeof(NcclResult),
        "ncclResult_t*" => typeof(NcclResult*),
        "int" => typeof(int),
        "int*" => typeof(int*),
        "size_t" => typeof(nuint),
        "void*" => typeof(void*),
        "char*" => typeof(byte*),
        "ncclUniqueId" => typeof(NcclUniqueId),
        "ncclUniqueId*" => typeof(NcclUniqueId*),
        "ncclConfig_t*" => typeof(NcclConfig*),
        "ncclComm_t" or "cudaStream_t" => typeof(nint),
        "ncclComm_t*" => typeof(nint*),
        "ncclDataType_t" => typeof(NcclDataType),
        "ncclRedOp_t" => typeof(NcclRedOp),
        _ => throw new ArgumentException($"no mapping for C type '{c}'"),
    };

    /// <summary>"const void* sendbuff" → "void*", "ncclResult_t *asyncError" → "ncclResult_t*".</summary>
    static string CType(string declaration)
    {
        var d = Regex.Replace(declaration.Trim(), @"\s+", " ");
        d = Regex.Replace(d, @"\w+$", "");                      // the parameter's name
        return Regex.Replace(d, @"\bconst\b", "").Replace(" ", "", StringComparison.Ordinal);
    }

    [Test]
    public void EveryFunctionPointerHasTheSignatureOfItsPrototype()
    {
        var prototypes = Prototype().Matches(Regex.Replace(Header, @",\s*\n\s+", ", ")).ToDictionary(m => m.Groups["name"].Value);
        Assert.That(NcclNative.Exports.Select(e => e.Export), Is.EquivalentTo(prototypes.Keys), "one pointer per prototype quoted");
        foreach (var (export, field) in NcclNative.Exports)
        {
            var p = prototypes[export];
            var type = typeof(NcclNative).GetField(field, BindingFlags.Public | BindingFlags.Static)!.FieldType;
            Assert.That(type.IsFunctionPointer && type.IsUnmanagedFunctionPointer, Is.True, $"{field} is an unmanaged function pointer");
            var expected = p.Groups["params"].Value.Split(',').Select(CType).Select(Map).ToArray();
            Assert.That(type.GetFunctionPointerParameterTypes(), Is.EqualTo(expected), $"{export}'s parameters ({p.Groups["params"].Value})");
            Assert.That(type.GetFunctionPointerReturnType(), Is.EqualTo(Map(CType(p.Groups["ret"].Value + " x"))), $"{export}'s return type");
        }
        // The unique id travels by value (a 128-byte struct on the stack), not as a pointer.
        var init = typeof(NcclNative).GetField(nameof(NcclNative.CommInitRankConfig))!.FieldType.GetFunctionPointerParameterTypes();
        Assert.That(init[2], Is.EqualTo(typeof(NcclUniqueId)));
    }

    [Test]
    public void TheLibraryIsFoundInTheWheelFolderAndAMissingOneSaysWhereItLookedAndHowToInstall()
    {
        var root = Directory.CreateTempSubdirectory("sbp-nccl-");
        try
        {
            string empty = Directory.CreateDirectory(Path.Combine(root.FullName, "cublas", "lib")).FullName;
            string wheel = Directory.CreateDirectory(Path.Combine(root.FullName, "nccl", "lib")).FullName;
            File.WriteAllText(Path.Combine(wheel, "libnccl.so.2"), "");
            Assert.That(NcclLibrary.Find([empty, wheel]), Is.EqualTo(Path.Combine(wheel, "libnccl.so.2")));
            Assert.That(NcclLibrary.Find([empty]), Is.Null);
            var message = NcclLibrary.NotFoundMessage([empty]);
            Assert.That(message, Does.Contain("libnccl.so.2 not found").And.Contain(empty).And.Contain("LD_LIBRARY_PATH")
                .And.Contain("pip install nvidia-nccl-cu12").And.Contain("SBP_CUDA_LIB_DIRS"));
        }
        finally
        {
            root.Delete(recursive: true);
        }
        Assert.That(NcclLibrary.FormatVersion(22105), Is.EqualTo("2.21.5"));
        Assert.That(NcclLibrary.FormatVersion(2708), Is.EqualTo("2.7.8"), "before 2.9 the code was X*1000 + Y*100 + Z");
    }

    [Test]
    public void IsAvailableSaysWhereItLookedAndHowToInstallWhenTheLibraryIsMissing()
    {
        // CI has no libnccl.so.2 (no GPU); a machine with the wheel or LD_LIBRARY_PATH set answers true with no reason.
        bool available = NcclCommunicator.IsAvailable(out var reason);
        TestContext.Out.WriteLine(available ? "libnccl.so.2 loads here" : reason);
        if (available) Assert.That(reason, Is.Empty);
        else Assert.That(reason, Does.StartWith("NCCL: ").And.Contain("libnccl.so.2").And.Contain("pip install nvidia-nccl-cu12"));
    }

    [Test]
    public void ACpuDeviceIsRefusedBeforeAnyLibraryIsLoaded()
    {
        using var bootstrap = new SingleProcessCommunicator();
        var e = Assert.Throws<ArgumentException>(() => NcclCommunicator.Create(bootstrap, Device.Cpu))!;
        Assert.That(e.Message, Does.Contain("not CUDA").And.Contain("--dist mpi"));
    }
}
