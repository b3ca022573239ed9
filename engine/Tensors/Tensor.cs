using System.Runtime.InteropServices;
using Sbp.Backends;
using Sbp.Memory;

namespace Sbp.Tensors;

/// <summary>
/// A dense, contiguous, row-major tensor in native device memory. Disposing it returns its memory
/// to the device's pool (views created by <see cref="Ops.Reshape"/> share the memory and keep it
/// alive). Tensors made inside a <see cref="TensorScope"/> are disposed with the scope.
/// Ops live in <see cref="Ops"/>; the instance methods and operators here forward to them.
/// </summary>
public sealed unsafe partial class Tensor : IDisposable
{
    static long _nextId;
    MemoryBlock? _block;

    Tensor(MemoryBlock block, Shape shape, DType dtype, Device device, bool register)
    {
        _block = block;
        Shape = shape;
        DType = dtype;
        Device = device;
        Id = Interlocked.Increment(ref _nextId);
        if (register) TensorScope.Register(this);
    }

    ~Tensor()
    {
        // Safety net only: a tensor the program dropped without Dispose. The pool is thread-safe.
        var b = Interlocked.Exchange(ref _block, null);
        if (b is not null && !b.IsFreed) b.Pool.Release(b);
    }

    /// <summary>Unique within the process; the autograd tape keys gradients by it.</summary>
    public long Id { get; }
    public Shape Shape { get; }
    public DType DType { get; }
    public Device Device { get; }
    public IBackend Backend => Device.Backend;
    public int Rank => Shape.Rank;
    public long Numel => Shape.Numel;
    public long Bytes => Numel * DType.Size();
    public string? Name { get; set; }
    public bool IsDisposed => _block is null;
    internal TensorScope? Scope { get; set; }

    /// <summary>The memory this tensor reads and writes (shared with its views).</summary>
    public MemoryBlock Block => _block ?? throw Disposed();

    /// <summary>Start of the data (a device address on CUDA). Backends only: CPU code outside the engine uses <see cref="AsSpan"/>.</summary>
    internal nint Pointer => Block.Pointer;
    internal float* F => (float*)Block.Pointer;
    internal int* I => (int*)Block.Pointer;

    // ---- autograd state -------------------------------------------------------------------

    bool _requiresGrad;

    /// <summary>
    /// Leaves (tensors not produced by a recorded op) may be marked to receive a gradient in
    /// <see cref="Grad"/>; outputs of recorded ops require grad when any input does.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (!IsLeaf) throw new InvalidOperationException($"Tensor {Shape}: RequiresGrad can only be set on a leaf tensor; this one was produced by '{Producer}'. Use Detach() to make a leaf.");
            if (value && DType != DType.Float32) throw new InvalidOperationException($"Tensor {Shape}: only Float32 tensors can require grad (this one is {DType}).");
            _requiresGrad = value;
        }
    }

    /// <summary>True unless the tensor is the output of an op recorded on a tape.</summary>
    public bool IsLeaf => Producer is null;

    /// <summary>The name of the recorded op that produced this tensor, if any.</summary>
    public string? Producer { get; private set; }

    /// <summary>
    /// Set by the engine on Int32 index lists it made itself and never changes (SBP's kept positions): every element is in
    /// 0..IndexBound-1, so a GPU backend need not launch a check before using them. Null for everything a user makes.
    /// </summary>
    internal int? IndexBound { get; set; }

    /// <summary>Accumulated gradient of a leaf that requires grad (memory category Gradient).</summary>
    public Tensor? Grad { get; internal set; }

    internal void MarkRecorded(string op)
    {
        Producer = op;
        _requiresGrad = true;
    }

    /// <summary>An op's output under a gradient probe (<c>Tape.Probe</c>): requires grad as it would when recorded, without a producer.</summary>
    internal void MarkWouldRequireGrad() => _requiresGrad = true;

    /// <summary>Frees the accumulated gradient.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    // ---- creation ------------------------------------------------------------------------

    /// <summary>Uninitialized memory from the device pool.</summary>
    public static Tensor Empty(Shape shape, Device? device = null, DType dtype = DType.Float32,
        MemoryCategory category = MemoryCategory.Temporary) => Empty(OpLabel.Current, shape, device ?? Device.Default, dtype, category);

    /// <summary>Uninitialized memory labelled with the op that asked for it (for memory reports).</summary>
    internal static Tensor Empty(string op, Shape shape, Device device, DType dtype = DType.Float32,
        MemoryCategory category = MemoryCategory.Temporary)
    {
        var block = device.Pool.Allocate(shape.Numel * dtype.Size(), category, $"{op} {shape}");
        return new Tensor(block, shape, dtype, device, register: true);
    }

    public static Tensor Full(Shape shape, float value, Device? device = null, MemoryCategory category = MemoryCategory.Temporary)
    {
        var t = Empty(shape, device, DType.Float32, category);
        t.Backend.Fill(t, value);
        return t;
    }

    public static Tensor Zeros(Shape shape, Device? device = null, MemoryCategory category = MemoryCategory.Temporary) =>
        Full(shape, 0f, device, category);

    public static Tensor Ones(Shape shape, Device? device = null, MemoryCategory category = MemoryCategory.Temporary) =>
        Full(shape, 1f, device, category);

    public static Tensor Scalar(float value, Device? device = null) => Full(Shape.Scalar, value, device);

    public static Tensor FromArray(float[] data, Shape shape, Device? device = null, MemoryCategory category = MemoryCategory.Temporary)
    {
        CheckLength(data.Length, shape);
        var t = Empty(shape, device, DType.Float32, category);
        t.Backend.CopyFromHost(MemoryMarshal.AsBytes(data.AsSpan()), t);
        return t;
    }

    /// <summary>A tensor of <paramref name="dtype"/> (Float32, BFloat16 or Float16) from floats, rounded to nearest even for 16 bits.</summary>
    public static Tensor FromArray(float[] data, Shape shape, DType dtype, Device? device = null, MemoryCategory category = MemoryCategory.Temporary)
    {
        if (!dtype.IsFloating()) throw new ArgumentException($"Tensor.FromArray: floats make Float32, BFloat16 or Float16 tensors, not {dtype}.", nameof(dtype));
        if (dtype == DType.Float32) return FromArray(data, shape, device, category);
        CheckLength(data.Length, shape);
        var bits = new ushort[data.Length];
        HalfPrecision.Narrow(data, bits, dtype);
        var t = Empty(shape, device, dtype, category);
        t.Backend.CopyFromHost(MemoryMarshal.AsBytes(bits.AsSpan()), t);
        return t;
    }

    /// <summary>This tensor as <paramref name="dtype"/> (<see cref="Ops.To"/>): Float32, BFloat16 or Float16.</summary>
    public Tensor To(DType dtype) => Ops.To(this, dtype);

    public static Tensor FromArray(int[] data, Shape shape, Device? device = null)
    {
        CheckLength(data.Length, shape);
        var t = Empty(shape, device, DType.Int32);
        t.Backend.CopyFromHost(MemoryMarshal.AsBytes(data.AsSpan()), t);
        return t;
    }

    /// <summary>A 1-D Int32 tensor of indices.</summary>
    public static Tensor Indices(params int[] indices) => FromArray(indices, new Shape(indices.Length));

    static void CheckLength(int length, Shape shape)
    {
        if (length != shape.Numel)
            throw new ShapeMismatchException($"Tensor.FromArray: {length} values do not fill shape {shape} ({shape.Numel} elements).");
    }

    /// <summary>A new tensor object over the same memory (a free view), with its own shape.</summary>
    internal Tensor View(Shape shape, bool register = true)
    {
        if (shape.Numel != Numel) throw new ShapeMismatchException($"view: {Shape} ({Numel} elements) cannot be viewed as {shape} ({shape.Numel}).");
        var b = Block;
        b.Pool.AddRef(b);
        return new Tensor(b, shape, DType, Device, register);
    }

    /// <summary>A new handle on a live block (its reference count raised), as <paramref name="dtype"/> of <paramref name="shape"/>, not in any scope.</summary>
    internal static Tensor OverBlock(MemoryBlock block, Shape shape, DType dtype, Device device)
    {
        if (block.IsFreed || shape.Numel * dtype.Size() > block.Bytes)
            throw new InvalidOperationException($"Tensor.OverBlock: {block} cannot hold {dtype} {shape}.");
        block.Pool.AddRef(block);
        return new Tensor(block, shape, dtype, device, register: false);
    }

    /// <summary>
    /// A 16-bit tensor's memory as Float32 pairs of elements (the last axis halved; it must be even), not recorded: a copy
    /// that keeps the last axis whole moves pairs, so the Float32 copy kernels move 16-bit tensors too.
    /// </summary>
    internal Tensor AsFloatPairs()
    {
        if (!DType.Is16Bit() || Rank == 0 || Shape[-1] % 2 != 0)
            throw new InvalidOperationException($"Tensor.AsFloatPairs: a {DType} {Shape} tensor is not 16-bit with an even last axis.");
        return OverBlock(Block, new Shape([.. Shape.ToArray()[..^1], Shape[-1] / 2]), DType.Float32, Device);
    }

    /// <summary>A leaf over the same memory that does not require grad and is not recorded.</summary>
    public Tensor Detach() => View(Shape);

    /// <summary>
    /// <c>f(this)</c>, then this handle is disposed: a forward chain frees each intermediate as soon
    /// as the next op has read it instead of when its scope ends (what the tape saved for backward
    /// it holds itself). Not disposed when <paramref name="f"/> returns this tensor.
    /// <code>var h = conv.Forward(x).Consume(bn.Forward).Consume(Ops.Relu);</code>
    /// </summary>
    public Tensor Consume(Func<Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        var y = f(this);
        if (!ReferenceEquals(y, this)) Dispose();
        return y;
    }

    /// <summary>Removes the tensor from its scope: it lives until disposed explicitly.</summary>
    public Tensor DetachFromScope()
    {
        Scope?.Forget(this);
        Scope = null;
        return this;
    }

    // ---- reading back ------------------------------------------------------------------------

    /// <summary>The values as floats (a BFloat16 or Float16 tensor's widened exactly).</summary>
    public float[] ToArray()
    {
        if (DType == DType.Int32) throw new InvalidOperationException($"Tensor.ToArray: tensor is {DType}; use ToIntArray().");
        var a = new float[Numel];
        if (DType.Is16Bit())
        {
            var bits = new ushort[Numel];
            Backend.CopyToHost(this, MemoryMarshal.AsBytes(bits.AsSpan()));
            HalfPrecision.Widen(bits, a, DType);
            return a;
        }
        Backend.CopyToHost(this, MemoryMarshal.AsBytes(a.AsSpan()));
        return a;
    }

    public int[] ToIntArray()
    {
        if (DType != DType.Int32) throw new InvalidOperationException($"Tensor.ToIntArray: tensor is {DType}; use ToArray().");
        var a = new int[Numel];
        Backend.CopyToHost(this, MemoryMarshal.AsBytes(a.AsSpan()));
        return a;
    }

    /// <summary>
    /// The elements of a Float32 tensor on a CPU device, in place (no copy): writes are the tensor's. Valid until the
    /// tensor is disposed. A CUDA tensor has no host view: use <see cref="ToArray"/>.
    /// </summary>
    public Span<float> AsSpan()
    {
        RequireHostView("AsSpan", DType.Float32, "AsIntSpan");
        return new Span<float>(F, checked((int)Numel));
    }

    /// <summary>The elements of an Int32 tensor on a CPU device, in place (no copy); see <see cref="AsSpan"/>.</summary>
    public Span<int> AsIntSpan()
    {
        RequireHostView("AsIntSpan", DType.Int32, "AsSpan");
        return new Span<int>(I, checked((int)Numel));
    }

    void RequireHostView(string name, DType dtype, string other)
    {
        if (Device.Kind != DeviceKind.Cpu)
            throw new InvalidOperationException($"Tensor.{name}: tensor {Shape} is on device '{Device}'; only CPU tensors have a host view. Copy it with ToArray() or ToIntArray().");
        if (DType != dtype)
            throw new InvalidOperationException($"Tensor.{name}: tensor {Shape} is {DType}; use {other}().");
        if (Numel > int.MaxValue)
            throw new InvalidOperationException($"Tensor.{name}: tensor {Shape} has {Numel} elements, more than a span holds ({int.MaxValue}).");
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Tensor.Item: tensor has shape {Shape} ({Numel} elements); Item needs exactly one.");
        return ToArray()[0];
    }

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _block, null);
        if (b is null) return;
        Scope?.Forget(this);
        Scope = null;
        b.Pool.Release(b);
        ZeroGrad();
        GC.SuppressFinalize(this);
    }

    ObjectDisposedException Disposed() =>
        new($"Tensor {Shape}{(Name is null ? "" : $" '{Name}'")}", "The tensor was disposed (explicitly or by its TensorScope); keep it with scope.Keep(t) if it is needed later.");

    public override string ToString()
    {
        var head = $"Tensor{Shape} {DType} on {Device.Name}{(Producer is null ? "" : $" from {Producer}")}{(RequiresGrad ? " requires_grad" : "")}";
        if (IsDisposed) return head + " (disposed)";
        if (Numel > 16) return head;
        return DType == DType.Float32
            ? head + " [" + string.Join(", ", ToArray().Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture))) + "]"
            : head + " [" + string.Join(", ", ToIntArray()) + "]";
    }
}
