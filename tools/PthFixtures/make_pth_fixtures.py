#!/usr/bin/env python3
"""Writes PyTorch checkpoint (.pth) test fixtures without importing torch.

Usage:
    python3 tools/PthFixtures/make_pth_fixtures.py --out tests/Sbp.Models.Tests/Fixtures/Pth
    python3 tools/PthFixtures/make_pth_fixtures.py --out DIR --verify-with-torch [--torch-python /usr/bin/python3]

The files follow torch.save's formats (torch/serialization.py `_save` and `_legacy_save`,
caffe2/serialize/inline_container.cc `writeRecord`/`getPadding`/`writeEndOfFile`, torch/_tensor.py
`_reduce_ex_internal`, torch/_utils.py `_rebuild_tensor_v2`). The pickles of the valid files are made by
Python's own pickle.Pickler (protocol 2, torch's DEFAULT_PROTOCOL) over small stand-ins for torch's
objects, so memo opcodes (BINPUT/BINGET) land exactly where torch.save puts them. The hostile files'
pickles are written opcode by opcode. Output is deterministic: no timestamps, fixed order.

Standard library only. The optional --verify-with-torch runs a separate interpreter that has torch
(nothing here imports it) and prints what torch.load(weights_only=True) says about every file.
See tools/PthFixtures/README.md.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REFERENCE = os.path.join(REPO, "tests", "Sbp.Models.Tests", "Fixtures", "Reference")
COMMAND = "python3 tools/PthFixtures/make_pth_fixtures.py --out tests/Sbp.Models.Tests/Fixtures/Pth"
PWN_COMMAND = "touch /tmp/sbp-pwned"

# --------------------------------------------------------------------------------------------------
# dtypes: torch dtype name -> (legacy storage class name used in the pickle, element size in bytes)
# (torch/storage.py _dtype_to_storage_type_map; TypedStorage._pickle_storage_type)
# --------------------------------------------------------------------------------------------------
DTYPES = {
    "float32": ("FloatStorage", 4),
    "float16": ("HalfStorage", 2),
    "bfloat16": ("BFloat16Storage", 2),
    "float64": ("DoubleStorage", 8),
    "int64": ("LongStorage", 8),
    "int32": ("IntStorage", 4),
    "uint8": ("ByteStorage", 1),
    "bool": ("BoolStorage", 1),
}


# --------------------------------------------------------------------------------------------------
# Stand-ins for torch's modules. pickle writes a global as GLOBAL '<obj.__module__>\n<obj.__qualname__>\n'
# after checking that importing that module gives back the same object, so the stand-ins live in
# sys.modules only while a pickle is written (nothing named torch is imported).
# --------------------------------------------------------------------------------------------------
def _make_fake_torch():
    torch_mod = types.ModuleType("torch")
    utils_mod = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: these objects are only ever pickled
        raise RuntimeError("stand-in for torch._utils._rebuild_tensor_v2")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch_mod._utils = utils_mod
    for storage_name, _ in DTYPES.values():
        setattr(torch_mod, storage_name, type(storage_name, (), {"__module__": "torch"}))
    return torch_mod, utils_mod


FAKE_TORCH, FAKE_UTILS = _make_fake_torch()


class _FakeTorchInstalled:
    def __enter__(self):
        self.saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        sys.modules["torch"] = FAKE_TORCH
        sys.modules["torch._utils"] = FAKE_UTILS
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class Storage:
    """A typed storage: dtype + raw little-endian bytes. `numel` may be overridden (hostile files)."""

    def __init__(self, dtype, data, numel=None, legacy_key=None):
        self.dtype = dtype
        self.data = bytes(data)
        elem = DTYPES[dtype][1]
        if numel is None:
            assert len(self.data) % elem == 0
            numel = len(self.data) // elem
        self.numel = numel
        self.legacy_key = legacy_key  # str(storage._cdata) in _legacy_save: a pointer printed in decimal

    @property
    def storage_type(self):
        return getattr(FAKE_TORCH, DTYPES[self.dtype][0])


class Tensor:
    """Pickles like torch.Tensor.__reduce_ex__ for a plain CPU tensor (torch/_tensor.py _reduce_ex_internal):
    (torch._utils._rebuild_tensor_v2, (storage, storage_offset, tuple(size), stride, requires_grad,
    backward_hooks)) with a fresh empty OrderedDict as backward_hooks and no metadata argument."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = list(size)
        self.stride = list(stride)

    def __reduce_ex__(self, protocol):
        return (
            FAKE_UTILS._rebuild_tensor_v2,
            (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()),
        )


STORAGE_TAG = "storage"  # one object, like the literal in torch's persistent_id (memoized after first use)
LOCATION_CPU = "cpu"  # one object, like the literal returned by serialization._cpu_tag


class TorchPickler(pickle.Pickler):
    """pickle.Pickler + torch's persistent_id (serialization.py _save / _legacy_save)."""

    def __init__(self, f, legacy=False):
        super().__init__(f, protocol=2)  # DEFAULT_PROTOCOL
        self.legacy = legacy
        self.id_map = {}  # id(storage) -> key string (one object per storage, as id_map.setdefault keeps it)
        self.storages = []  # (key, storage) in order of first use

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        if self.legacy:
            key = str(obj.legacy_key)  # a new string every time, as str(storage._cdata)
            if all(k != key for k, _ in self.storages):
                self.storages.append((key, obj))
            return (STORAGE_TAG, obj.storage_type, key, LOCATION_CPU, obj.numel, None)
        if id(obj) not in self.id_map:
            key = str(len(self.id_map))
            self.id_map[id(obj)] = key
            self.storages.append((key, obj))
        return (STORAGE_TAG, obj.storage_type, self.id_map[id(obj)], LOCATION_CPU, obj.numel)


def torch_pickle(obj, legacy=False):
    buf = io.BytesIO()
    with _FakeTorchInstalled():
        p = TorchPickler(buf, legacy=legacy)
        p.dump(obj)
    return buf.getvalue(), p.storages


def state_dict(entries, metadata_prefixes):
    """An OrderedDict with a `_metadata` attribute, as nn.Module.state_dict() returns it: it pickles as
    GLOBAL collections.OrderedDict, EMPTY_TUPLE, REDUCE, MARK ... SETITEMS, then BUILD {'_metadata': ...}."""
    sd = collections.OrderedDict(entries)
    meta = collections.OrderedDict()
    for prefix in metadata_prefixes:
        meta[prefix] = {"version": 1}
    sd._metadata = meta
    return sd


def module_prefixes(names):
    """'' plus every module path above each parameter name, parents first, in first-seen order."""
    out = [""]
    seen = {""}
    for name in names:
        parts = name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            p = ".".join(parts[:i])
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


# --------------------------------------------------------------------------------------------------
# Zip writer: the bytes miniz writes for PyTorchStreamWriter (caffe2/serialize/inline_container.cc).
# Each record: local header (version needed 0 stored / 20 deflated, flags 0x0808 = data descriptor +
# UTF-8, time/date/crc/sizes 0), name, an 'FB' extra field padding the data to a 64-byte boundary
# (getPadding), the data, a data descriptor PK\x07\x08 crc csize usize. Then the central directory
# (no extra fields), a ZIP64 end-of-central-directory record + locator (MZ_ZIP_FLAG_WRITE_ZIP64) and the
# classic end record. Checked byte for byte against torch 1.13's torch.save (see --verify-with-torch).
# --------------------------------------------------------------------------------------------------
ALIGN = 64  # kFieldAlignment


def build_zip(top, records):
    """records: list of (name, data, compress). Returns the archive bytes."""
    out = bytearray()
    central = []
    for name, data, compress in records:
        full = (top + "/" + name).encode("ascii")
        offset = len(out)
        start = offset + 30 + len(full) + 4
        pad = (-start) % ALIGN
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if compress:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
            method, needed = 8, 20
        else:
            payload = data
            method, needed = 0, 0
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, needed, 0x0808, method, 0, 0, 0, 0, 0, len(full), len(extra))
        out += full + extra + payload
        out += struct.pack("<IIII", 0x08074B50, crc, len(payload), len(data))
        central.append((full, needed, method, crc, len(payload), len(data), offset))
    cd_offset = len(out)
    for full, needed, method, crc, csize, usize, offset in central:
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0, needed, 0x0808, method, 0, 0, crc, csize, usize, len(full), 0, 0, 0, 0, 0, offset
        )
        out += full
    cd_size = len(out) - cd_offset
    n = len(central)
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, cd_size, cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, 0)
    return bytes(out)


def serialization_id(records):
    """A deterministic 40-digit stand-in for .data/serialization_id (torch: 20 digits of a combined hash of
    the record names + 20 digits of combined CRC32s, taken over an unordered_set: not reproducible here)."""
    h = hashlib.sha256("\n".join(name for name, _, _ in records).encode()).digest()
    crc = 0
    for _, data, _ in records:
        crc = zlib.crc32(data, crc)
    return "%020d%020d" % (int.from_bytes(h[:8], "little"), crc)


def torch_zip(top, pkl, storages, layout="modern", compress_data=False, data_override=None):
    """The records torch.save writes, in its order.
    layout 'modern' (torch.save of 2.5+): data.pkl, .format_version, .storage_alignment, byteorder,
        data/<key> in first-use order, then (writeEndOfFile) version, .data/serialization_id.
    layout '1x' (torch 1.6 - 2.0): data.pkl, data/<key> in sorted (string) order, then version."""
    data_of = dict(data_override or {})
    if layout == "modern":
        records = [("data.pkl", pkl, False), (".format_version", b"1", False), (".storage_alignment", b"64", False),
                   ("byteorder", b"little", False)]
        keys = [k for k, _ in storages]
    elif layout == "1x":
        records = [("data.pkl", pkl, False)]
        keys = sorted(k for k, _ in storages)
    else:
        raise ValueError(layout)
    by_key = dict(storages)
    for k in keys:
        records.append(("data/" + k, data_of.get(k, by_key[k].data), compress_data))
    records.append(("version", b"3\n", False))
    if layout == "modern":
        records.append((".data/serialization_id", serialization_id(records).encode(), False))
    return build_zip(top, records)


def legacy_file(obj):
    """torch.save(..., _use_new_zipfile_serialization=False) (serialization.py _legacy_save): pickles of
    MAGIC_NUMBER, PROTOCOL_VERSION, sys_info, the object (persistent ids with 6 fields), the sorted storage
    keys; then per key an int64 little-endian element count and the raw bytes (THPStorage_writeFileRaw)."""
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    sys_info = dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
    pickle.dump(sys_info, out, protocol=2)
    pkl, storages = torch_pickle(obj, legacy=True)
    out.write(pkl)
    keys = sorted(k for k, _ in storages)
    pickle.dump(keys, out, protocol=2)
    by_key = dict(storages)
    for k in keys:
        s = by_key[k]
        out.write(struct.pack("<q", s.numel))
        out.write(s.data)
    return out.getvalue(), keys


# --------------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    base = 8 + n
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], list(e["shape"]), raw[base + b:base + end])
    return out


def write_safetensors(entries, metadata):
    """entries: list of (name, shape, f32 bytes). F32 only; header space-padded to a multiple of 8."""
    header = collections.OrderedDict()
    header["__metadata__"] = metadata
    off = 0
    for name, shape, data in entries:
        assert len(data) == 4 * prod(shape)
        header[name] = collections.OrderedDict([("dtype", "F32"), ("shape", list(shape)), ("data_offsets", [off, off + len(data)])])
        off += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(d for _, _, d in entries)


def prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


# --------------------------------------------------------------------------------------------------
# Exact conversions to float32 bits, as torch's .float() gives them on the CPU.
# --------------------------------------------------------------------------------------------------
def f16_to_f32_bits(h):
    """float16 -> float32 bits as torch's CPU .float() gives them: exact; a NaN keeps its sign and payload and
    comes out quiet (checked against torch 1.13 for all 65536 patterns)."""
    sign = (h & 0x8000) << 16
    exp = (h >> 10) & 0x1F
    man = h & 0x3FF
    if exp == 0x1F:
        return sign | (0x7FC00000 if man else 0x7F800000) | (man << 13)
    if exp == 0:
        if man == 0:
            return sign
        k = 0
        while not (man & 0x400):  # normalize the subnormal: value = man * 2^-24 = 1.f * 2^(-14 - k)
            man <<= 1
            k += 1
        man &= 0x3FF
        return sign | ((127 - 14 - k) << 23) | (man << 13)
    return sign | ((exp - 15 + 127) << 23) | (man << 13)


def f64_to_f32_bits(x):
    """Round to nearest even (static_cast<float>(double)); out of range -> +-inf."""
    try:
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except OverflowError:
        return 0xFF800000 if x < 0 else 0x7F800000


def int_to_f32_bits(n):
    """static_cast<float>(int64_t): one rounding to nearest even (not through double)."""
    if n == 0:
        return 0
    a = abs(n)
    e = a.bit_length()
    if e > 24:
        shift = e - 24
        q, r = divmod(a, 1 << shift)
        half = 1 << (shift - 1)
        if r > half or (r == half and (q & 1)):
            q += 1
        a = q << shift
    return struct.unpack("<I", struct.pack("<f", float(-a if n < 0 else a)))[0]


def to_f32_bits(dtype, elem):
    """elem: the element's raw bytes."""
    if dtype == "float32":
        return struct.unpack("<I", elem)[0]
    if dtype == "float16":
        return f16_to_f32_bits(struct.unpack("<H", elem)[0])
    if dtype == "bfloat16":
        return struct.unpack("<H", elem)[0] << 16
    if dtype == "float64":
        return f64_to_f32_bits(struct.unpack("<d", elem)[0])
    if dtype == "int64":
        return int_to_f32_bits(struct.unpack("<q", elem)[0])
    if dtype == "int32":
        return int_to_f32_bits(struct.unpack("<i", elem)[0])
    if dtype in ("uint8", "bool"):
        return int_to_f32_bits(elem[0])
    raise ValueError(dtype)


def view_elements(t):
    """The raw bytes of each element of tensor t in row-major (logical) order."""
    elem = DTYPES[t.storage.dtype][1]
    out = []
    n = prod(t.size)
    idx = [0] * len(t.size)
    for _ in range(n):
        off = t.offset + sum(i * s for i, s in zip(idx, t.stride))
        out.append(t.storage.data[off * elem:(off + 1) * elem])
        for d in reversed(range(len(idx))):
            idx[d] += 1
            if idx[d] < t.size[d]:
                break
            idx[d] = 0
    return out


def contiguous(t):
    size = list(t.size)
    stride = []
    acc = 1
    for s in reversed(size):
        stride.insert(0, acc)
        acc *= s
    return size, stride


def plain_tensor(dtype, size, data):
    size, stride = contiguous(Tensor(None, 0, size, []))
    return Tensor(Storage(dtype, data), 0, size, stride)


def packs(fmt, values):
    return b"".join(struct.pack("<" + fmt, v) for v in values)


# --------------------------------------------------------------------------------------------------
# The valid files
# --------------------------------------------------------------------------------------------------
SWIN_CONFIG_TEXT = (
    "# Video Swin \u2014 tiny test map (mmaction2 style config, text only)\n"
    "model = dict(\n"
    "    type='Recognizer3D',\n"
    "    backbone=dict(type='SwinTransformer3D', patch_size=(2, 4, 4), embed_dim=8, depths=[2, 2, 2],\n"
    "                  num_heads=[1, 2, 4], window_size=(2, 4, 4), mlp_ratio=2., qkv_bias=True,\n"
    "                  qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2, patch_norm=True),\n"
    "    cls_head=dict(type='I3DHead', in_channels=32, num_classes=5, spatial_type='avg', dropout_ratio=0.5),\n"
    "    test_cfg=dict(average_clips='prob'))\n"
    "total_epochs = 30\n"
)


def make_swin():
    ref = read_safetensors(os.path.join(REFERENCE, "swin-small-map.safetensors"))
    entries = []
    special = []
    for name, (dt, shape, raw) in ref.items():
        if not (name.startswith("backbone.") or name.startswith("cls_head.")):
            continue
        if dt == "I32":
            vals = struct.unpack("<%di" % (len(raw) // 4), raw)
            t = plain_tensor("int64", shape, packs("q", vals))
            special.append(name)
        elif dt == "F32":
            t = plain_tensor("float32", shape, raw)
        else:
            raise ValueError(dt)
        entries.append((name, t))
    sd = state_dict(entries, module_prefixes([n for n, _ in entries]))
    meta = {
        "config": SWIN_CONFIG_TEXT,
        "epoch": 30,
        "iter": 72120,
        "mmcv_version": "1.3.1",
        "time": "Tue Jun 22 03:14:15 2021",
        "seed": None,
        "hook_msgs": {"last_ckpt": "work_dirs/swin_tiny/epoch_30.pth", "best_score": 0.788,
                      "best_ckpt": "work_dirs/swin_tiny/best_top1_acc_epoch_30.pth"},
    }
    obj = {"meta": meta, "state_dict": sd}
    pkl, storages = torch_pickle(obj)
    data = torch_zip("swin-small-map", pkl, storages, layout="modern")
    info = collections.OrderedDict([
        ("description", "Video Swin (mmaction layout) tiny map: plain dict {'meta', 'state_dict'}; state_dict is an "
                        "OrderedDict with _metadata; the entries of Reference/swin-small-map.safetensors named backbone.* "
                        "and cls_head.*; relative_position_index buffers as int64 (LongStorage), everything else float32. "
                        "meta holds str (multi-line, non-ASCII), int (BININT1 and BININT), None, a float (BINFLOAT) and a nested dict."),
        ("layout", "zip, torch >= 2.5 record order: data.pkl, .format_version, .storage_alignment, byteorder, data/0..N "
                   "(first-use order), version, .data/serialization_id"),
        ("top_folder", "swin-small-map"),
        ("state_dict_path", ["state_dict"]),
        ("entries", len(entries)),
        ("storages", len(storages)),
        ("int64_entries", special),
        ("expected", "Reference/swin-small-map.safetensors, same names; I32 values there are int64 here"),
    ])
    return data, info


def make_r2plus1d():
    """torchvision's layout: the state dict itself at the top level, with an int64 0-dim num_batches_tracked per BN."""
    ref = read_safetensors(os.path.join(REFERENCE, "r2plus1d-tiny-eval.safetensors"))
    results = {"input", "target", "logits", "loss"}
    entries = []
    for name, (dt, shape, raw) in ref.items():
        if name in results or name.startswith("grad."):
            continue
        if dt != "F32":
            raise ValueError(dt)
        entries.append((name, plain_tensor("float32", shape, raw)))
        if name.endswith(".running_var"):
            # torchvision state dicts carry the BN step counter (int64, 0-dim) right after running_var
            entries.append((name[:-len("running_var")] + "num_batches_tracked", plain_tensor("int64", [], packs("q", [0]))))
    sd = state_dict(entries, module_prefixes([n for n, _ in entries]))
    pkl, storages = torch_pickle(sd)
    data = torch_zip("r2plus1d-tiny-eval", pkl, storages, layout="modern")
    info = collections.OrderedDict([
        ("description", "torchvision R(2+1)D tiny (the r2plus1d-tiny-eval reference weights) as torchvision saves a "
                        "state dict: a top-level OrderedDict with _metadata, num_batches_tracked (int64, 0-dim) after each "
                        "BN's running_var"),
        ("layout", "zip, torch >= 2.5 record order"),
        ("top_folder", "r2plus1d-tiny-eval"),
        ("state_dict_path", []),
        ("entries", len(entries)),
        ("storages", len(storages)),
        ("expected", "Reference/r2plus1d-tiny-eval.safetensors, same names, plus num_batches_tracked = 0"),
    ])
    return data, info


def make_videomae():
    ref = read_safetensors(os.path.join(REFERENCE, "videomae-tiny.safetensors"))
    skip = {"input", "target", "logits", "loss"}
    f32 = collections.OrderedDict()
    shapes = {}
    for name, (dt, shape, raw) in ref.items():
        if name in skip or name.startswith("grad."):
            continue
        assert dt == "F32", name
        f32[name] = raw
        shapes[name] = shape
    q = "videomae.encoder.layer.0.attention.attention.q_bias"
    v = "videomae.encoder.layer.0.attention.attention.v_bias"
    cls_w = "classifier.weight"
    off_name = "videomae.embeddings.patch_embeddings.projection.bias"
    OFF_BEFORE, OFF_AFTER = 7, 6
    sentinel = struct.pack("<f", -12345.0)

    qv = Storage("float32", f32[q] + f32[v])  # one storage: q_bias then v_bias
    entries = []
    notes = collections.OrderedDict()
    for name, raw in f32.items():
        shape = shapes[name]
        key = "module." + name
        if name == q:
            t = Tensor(qv, 0, shape, [1])
            notes[key] = "shares one storage with %s (elements 0..%d)" % ("module." + v, shape[0] - 1)
        elif name == v:
            t = Tensor(qv, len(f32[q]) // 4, shape, [1])
            notes[key] = "storage_offset %d in the storage of %s" % (len(f32[q]) // 4, "module." + q)
        elif name == cls_w:
            out_f, in_f = shape
            rows = [raw[i * in_f * 4:(i + 1) * in_f * 4] for i in range(out_f)]
            tr = b"".join(rows[i][j * 4:(j + 1) * 4] for j in range(in_f) for i in range(out_f))
            t = Tensor(Storage("float32", tr), 0, [out_f, in_f], [1, out_f])
            notes[key] = "transposed view: storage holds the [%d, %d] transpose contiguously; size [%d, %d], stride (1, %d)" % (
                in_f, out_f, out_f, in_f, out_f)
        elif name == off_name:
            n = len(raw) // 4
            t = Tensor(Storage("float32", sentinel * OFF_BEFORE + raw + sentinel * OFF_AFTER), OFF_BEFORE, shape, [1])
            notes[key] = "storage_offset %d in a storage of %d floats; the other %d elements are -12345.0 (not part of the tensor)" % (
                OFF_BEFORE, OFF_BEFORE + n + OFF_AFTER, OFF_BEFORE + OFF_AFTER)
        else:
            t = plain_tensor("float32", shape, raw)
        entries.append((key, t))
    sd = state_dict(entries, module_prefixes([n for n, _ in entries]))
    pkl, storages = torch_pickle(sd)
    data = torch_zip("archive", pkl, storages, layout="1x")
    info = collections.OrderedDict([
        ("description", "HF VideoMAE tiny, saved as DataParallel does: a top-level OrderedDict (with _metadata), every key "
                        "prefixed 'module.'; the entries of Reference/videomae-tiny.safetensors except input, target, logits, "
                        "loss and grad.*. Storage variety listed in special_entries."),
        ("layout", "zip, torch 1.6-2.0 record order: data.pkl, data/<key> in string-sorted order (0, 1, 10, 11, ..., 2, ...), "
                   "version; no byteorder record (reader must default to little); top folder 'archive' (torch.save to a "
                   "buffer), not the file's base name"),
        ("top_folder", "archive"),
        ("state_dict_path", []),
        ("entries", len(entries)),
        ("storages", len(storages)),
        ("special_entries", notes),
        ("expected", "Reference/videomae-tiny.safetensors, names without the 'module.' prefix"),
    ])
    return data, info


def dtypes_entries():
    """(name, Tensor, torch dtype) for dtypes.pth; fresh stand-ins per call."""
    e = []
    f32_bits = [0x3F800000, 0xC0200000, 0x40490FDB, 0x80000000, 0x00000001, 0x7F7FFFFF]  # 1, -2.5, pi, -0, min subnormal, max
    e.append(("f32", plain_tensor("float32", [2, 3], packs("I", f32_bits))))
    f16_bits = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0xFC00, 0x3555, 0x7E00]  # 1 -2 65504 2^-24 -0 inf -inf ~1/3 NaN
    e.append(("f16", plain_tensor("float16", [9], packs("H", f16_bits))))
    bf16_bits = [0x3F80, 0xC0A0, 0x7F7F, 0x0001, 0x8000, 0x7F80, 0x7FC0, 0x3EAB]  # 1 -5 max 2^-133 -0 inf NaN ~1/3
    e.append(("bf16", plain_tensor("bfloat16", [8], packs("H", bf16_bits))))
    f64_vals = [0.1, -1.0 / 3.0, 1e-40, 16777217.0, 1e39, -0.0]  # rounding, f32 subnormal, tie to even, overflow -> inf
    e.append(("f64", plain_tensor("float64", [2, 3], packs("d", f64_vals))))
    i64_vals = [0, -1, 2 ** 60 + 2 ** 36 + 1, 16777217, -(2 ** 63), 2 ** 63 - 1]  # 2^60+2^36+1 rounds up only when rounded once
    e.append(("i64", plain_tensor("int64", [6], packs("q", i64_vals))))
    i32_vals = [0, -7, 2 ** 31 - 1, -(2 ** 31), 16777219]
    e.append(("i32", plain_tensor("int32", [5], packs("i", i32_vals))))
    e.append(("u8", plain_tensor("uint8", [2, 2], bytes([0, 1, 128, 255]))))
    e.append(("bool", plain_tensor("bool", [4], bytes([1, 0, 1, 1]))))
    e.append(("scalar", Tensor(Storage("float32", struct.pack("<f", 42.5)), 0, [], [])))
    e.append(("empty", Tensor(Storage("float32", b""), 0, [0, 3], [3, 1])))
    # torch.arange(24.).mul(0.5).reshape(2, 3, 4).permute(2, 0, 1): size (4, 2, 3), stride (1, 12, 4)
    e.append(("permuted", Tensor(Storage("float32", packs("f", [i * 0.5 for i in range(24)])), 0, [4, 2, 3], [1, 12, 4])))
    # torch.tensor([[1.], [2.], [3.]]).expand(3, 4): size (3, 4), stride (1, 0)
    e.append(("expanded", Tensor(Storage("float32", packs("f", [1.0, 2.0, 3.0])), 0, [3, 4], [1, 0])))
    return e


DTYPE_OF = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i64": "int64", "i32": "int32",
            "u8": "uint8", "bool": "bool", "scalar": "float32", "empty": "float32", "permuted": "float32", "expanded": "float32"}


def make_dtypes():
    entries = dtypes_entries()
    sd = state_dict(entries, [""])
    pkl, storages = torch_pickle(sd)
    data = torch_zip("dtypes", pkl, storages, layout="modern")
    key_of = {id(s): k for k, s in storages}
    listing = []
    expected = []
    for name, t in entries:
        listing.append(collections.OrderedDict([
            ("name", name), ("dtype", t.storage.dtype), ("storage_type", DTYPES[t.storage.dtype][0]),
            ("storage_key", key_of[id(t.storage)]), ("storage_numel", t.storage.numel),
            ("storage_offset", t.offset), ("shape", t.size), ("stride", t.stride),
        ]))
        bits = [to_f32_bits(t.storage.dtype, el) for el in view_elements(t)]
        expected.append((name, t.size, packs("I", bits)))
    st = write_safetensors(expected, collections.OrderedDict([
        ("source", "tools/PthFixtures/make_pth_fixtures.py: every entry of dtypes.pth converted as torch's .float() does, contiguous"),
        ("dtypes", json.dumps(collections.OrderedDict((n, t.storage.dtype) for n, t in entries), separators=(",", ":"))),
        ("generator", COMMAND),
    ]))
    info = collections.OrderedDict([
        ("description", "state dict (OrderedDict with _metadata {'': {'version': 1}}) covering every storage type a state "
                        "dict commonly has, a 0-dim scalar, an empty [0, 3] tensor (0-byte data record), a permuted 3-D view "
                        "and an expanded view with stride 0; special values (-0, subnormals, inf, NaN, max, rounding ties)"),
        ("layout", "zip, torch >= 2.5 record order (as swin-small-map.pth)"),
        ("top_folder", "dtypes"),
        ("state_dict_path", []),
        ("entries_detail", listing),
        ("expected", "dtypes.expected.safetensors"),
    ])
    exp_info = collections.OrderedDict([
        ("description", "every entry of dtypes.pth (and dtypes-legacy.pth) as float32, contiguous, same names and shapes: "
                        "the values torch's .float() gives (f16/bf16 exact with NaN payload, f64 rounded to nearest even with "
                        "overflow to inf, int64 rounded once to nearest even). Compare bit patterns (NaN != NaN). "
                        "__metadata__.dtypes gives each entry's original dtype."),
        ("expected_for", ["dtypes.pth", "dtypes-legacy.pth"]),
    ])
    return data, info, st, exp_info


LEGACY_KEYS = ["94360437751120", "94360437750016", "94360437749344", "94360437748560", "94360437747776",
               "94360437747072", "94360437746240", "94360437745424", "140227795591232", "140227795588608",
               "140227795586080", "140227795583424"]


def make_dtypes_legacy():
    entries = dtypes_entries()
    for (name, t), key in zip(entries, LEGACY_KEYS):
        t.storage.legacy_key = key
    sd = state_dict(entries, [""])
    data, keys = legacy_file(sd)
    info = collections.OrderedDict([
        ("description", "the dtypes.pth state dict in torch's legacy (non-zip) format: pickles of the magic number "
                        "0x1950a86a20f9469cfc6c, protocol version 1001, sys_info, the object (persistent ids "
                        "('storage', type, key, 'cpu', numel, None)), the sorted key list; then per key an int64 LE "
                        "element count and the raw bytes. Keys are pointer-like decimal strings whose string order "
                        "differs from first-use order."),
        ("storage_keys_first_use", LEGACY_KEYS[:len(entries)]),
        ("storage_keys_file_order", keys),
        ("expected", "dtypes.expected.safetensors"),
    ])
    return data, info


# --------------------------------------------------------------------------------------------------
# Hand-written pickle opcodes for the hostile files
# --------------------------------------------------------------------------------------------------
def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -2 ** 31 <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    raise ValueError(n)


def op_tuple(items):
    if len(items) == 0:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + bytes([0x84 + len(items)])
    return b"(" + b"".join(items) + b"t"


def op_tensor(storage_type, key, numel, offset, size, stride, storage_ops=None):
    """_rebuild_tensor_v2 call without memo opcodes (the trace of a state-dict tensor in torch/serialization.py's format)."""
    if storage_ops is None:
        storage_ops = op_tuple([op_str("storage"), op_global("torch", storage_type), op_str(key), op_str("cpu"), op_int(numel)]) + b"Q"
    return (op_global("torch._utils", "_rebuild_tensor_v2") + b"(" + storage_ops + op_int(offset)
            + op_tuple([op_int(s) for s in size]) + op_tuple([op_int(s) for s in stride]) + b"\x89"
            + op_global("collections", "OrderedDict") + b")R" + b"t" + b"R")


OD_START = op_global("collections", "OrderedDict") + b")R"  # empty OrderedDict on the stack
PROTO2 = b"\x80\x02"
F32_16 = packs("f", [0.5, -1.0, 2.0, 0.25])  # four floats for the hostile files' one real tensor


def hostile_zip(top, pkl, data_records=(("0", F32_16),), layout="modern", compress=False):
    storages = [(k, Storage("float32", d)) for k, d in data_records]
    return torch_zip(top, pkl, storages, layout=layout, compress_data=compress)


def make_hostile():
    """Returns a list of (file name, bytes, manifest info)."""
    out = []

    def add(name, data, attack, refuse_at, names):
        info = collections.OrderedDict([("attack", attack), ("refuse_at", refuse_at), ("names", names)])
        out.append((name, data, info))

    weight = op_str("weight") + op_tensor("FloatStorage", "0", 4, 0, [4], [1])

    # 1. GLOBAL os system + REDUCE, after a valid tensor entry
    pkl = PROTO2 + OD_START + b"(" + weight + op_str("x") + op_global("os", "system") + op_tuple([op_str(PWN_COMMAND)]) + b"R" + b"u."
    add("evil-os-system.pth", hostile_zip("evil-os-system", pkl),
        "remote code execution: GLOBAL os.system then REDUCE with ('%s',) as the value of a state-dict entry, after one valid tensor" % PWN_COMMAND,
        "GLOBAL os.system (opcode 'c' at data.pkl offset %d)" % pkl.index(b"cos\n"), ["os.system"])

    # 2. GLOBAL builtins eval + REDUCE
    code = '__import__("os").system("%s")' % PWN_COMMAND
    pkl = PROTO2 + OD_START + b"(" + weight + op_str("x") + op_global("builtins", "eval") + op_tuple([op_str(code)]) + b"R" + b"u."
    add("evil-builtins-eval.pth", hostile_zip("evil-builtins-eval", pkl),
        "remote code execution: GLOBAL builtins.eval then REDUCE with a Python expression that runs os.system",
        "GLOBAL builtins.eval (opcode 'c' at data.pkl offset %d)" % pkl.index(b"cbuiltins\n"), ["builtins.eval"])

    # 3. INST: MARK args INST module\nname\n (calls the named callable with the marked args; no GLOBAL needed)
    pkl = PROTO2 + OD_START + b"(" + weight + op_str("x") + b"(" + op_str(PWN_COMMAND) + b"ios\nsystem\n" + b"u."
    add("evil-inst.pth", hostile_zip("evil-inst", pkl),
        "remote code execution through INST (protocol 0 opcode 'i' that imports and calls os.system itself, no GLOBAL or REDUCE)",
        "INST (opcode 'i' 0x69 at data.pkl offset %d) naming os.system" % pkl.index(b"ios\n"), ["INST"])

    # 4. OBJ: MARK callable args OBJ (calls the callable without REDUCE); posix is what os.system pickles as on Linux
    pkl = PROTO2 + OD_START + b"(" + weight + op_str("x") + b"(" + op_global("posix", "system") + op_str(PWN_COMMAND) + b"o" + b"u."
    add("evil-obj.pth", hostile_zip("evil-obj", pkl),
        "remote code execution through OBJ (opcode 'o': MARK, callable, args, OBJ calls it without REDUCE); the callable "
        "is GLOBAL posix.system (os.system's real module on Linux)",
        "GLOBAL posix.system (data.pkl offset %d), first; OBJ (0x6f, offset %d) after it" % (
            pkl.index(b"cposix\n"), pkl.index(b"o" + b"u.")), ["posix.system", "OBJ"])

    # 5. STACK_GLOBAL under protocol 4: the global's names come from the stack, not from the opcode
    pkl = (b"\x80\x04" + OD_START + b"(" + weight + op_str("x") + op_str("os") + op_str("system") + b"\x93"
           + op_tuple([op_str(PWN_COMMAND)]) + b"R" + b"u.")
    add("evil-stack-global.pth", hostile_zip("evil-stack-global", pkl),
        "remote code execution through STACK_GLOBAL (protocol 4 opcode 0x93 taking module and name as strings from the "
        "stack: os, system) + REDUCE; the pickle declares PROTO 4",
        "STACK_GLOBAL (0x93 at data.pkl offset %d); a reader that accepts only protocol 2 refuses earlier at PROTO 4 (offset 0)" % (
            pkl.index(b"\x93")), ["STACK_GLOBAL", "PROTO", "protocol"])

    # 6. REDUCE on an allowed callable with the wrong arguments: _rebuild_tensor_v2('not a storage', ...)
    bad = op_tensor("FloatStorage", "0", 4, 0, [4], [1], storage_ops=op_str("not a storage"))
    pkl = PROTO2 + OD_START + b"(" + weight + op_str("bias") + bad + b"u."
    add("evil-reduce-ordereddict-abuse.pth", hostile_zip("evil-reduce-ordereddict-abuse", pkl),
        "REDUCE of an allowed global with arguments of the wrong type, inside an OrderedDict state dict: "
        "torch._utils._rebuild_tensor_v2 called with a str where the storage (a BINPERSID result) must be",
        "REDUCE of torch._utils._rebuild_tensor_v2 (data.pkl offset %d): argument 0 (storage) is a str" % (len(pkl) - 3),
        ["_rebuild_tensor_v2", "storage"])

    # 7. BINUNICODE with a huge declared length and a few bytes after it
    pkl = PROTO2 + OD_START + b"(" + b"X" + struct.pack("<I", 0x7FFFFFFF) + b"weight"
    add("evil-long-string.pth", hostile_zip("evil-long-string", pkl),
        "BINUNICODE declaring 0x7fffffff bytes (2 GiB allocation) with 6 bytes left in data.pkl",
        "BINUNICODE (opcode 'X' at data.pkl offset %d): declared length 2147483647 > bytes remaining" % pkl.index(b"X\xff"),
        ["BINUNICODE"])

    # 8. BINGET of a memo slot never written
    pkl = PROTO2 + op_global("collections", "OrderedDict") + b"q\x00)Rq\x01(" + weight + op_str("bias") + b"h\x2a" + b"u."
    add("evil-memo.pth", hostile_zip("evil-memo", pkl),
        "BINGET 42 of a memo index never put (only 0 and 1 are); a reader must not return a default or stale value",
        "BINGET (opcode 'h' at data.pkl offset %d) of memo index 42" % pkl.index(b"h\x2a"), ["BINGET", "memo"])

    # 9. tensor extent past its storage (pickled by the Pickler, like torch.save would if it could)
    s4 = Storage("float32", F32_16)
    sd = state_dict([("weight", Tensor(s4, 0, [4], [1])), ("bias", Tensor(Storage("float32", F32_16), 2, [3, 3], [3, 1]))], [""])
    pkl, storages = torch_pickle(sd)
    add("evil-storage-overrun.pth", torch_zip("evil-storage-overrun", pkl, storages),
        "tensor 'bias': storage_offset 2, size (3, 3), stride (3, 1) reaches element 2 + 2*3 + 2*1 = 10 of a 4-element storage "
        "(data/1 holds 16 bytes); reading it would run past the buffer",
        "entry 'bias': storage_offset + sum((size-1)*stride) = 10 >= storage numel 4 (storage key 1)",
        ["bias", "storage"])

    # 10. storage numel larger than its data record
    sd = state_dict([("weight", Tensor(Storage("float32", F32_16, numel=1000), 0, [1000], [1]))], [""])
    pkl, storages = torch_pickle(sd)
    add("evil-short-data.pth", torch_zip("evil-short-data", pkl, storages),
        "persistent id declares FloatStorage numel 1000 (4000 bytes) but data/0 holds 16 bytes; torch <= 2.9 sizes the "
        "storage from numel (CVE-2026-24747) and reads past the record",
        "record data/0: 16 bytes, expected numel 1000 * 4 = 4000", ["data/0"])

    # 11. negative stride
    sd = state_dict([("weight", Tensor(Storage("float32", F32_16), 3, [4], [-1]))], [""])
    pkl, storages = torch_pickle(sd)
    add("evil-negative-stride.pth", torch_zip("evil-negative-stride", pkl, storages),
        "tensor 'weight': stride (-1,) with storage_offset 3 (a reversed view torch cannot make): a reader that does "
        "offset + i*stride in unsigned or unchecked arithmetic reads out of bounds",
        "entry 'weight': stride -1 < 0 (BININT 0xffffffff in the stride tuple)", ["stride"])

    # 12. DEFLATE-compressed data record: a zip bomb shape (torch never compresses data records)
    numel = 10 * 1024 * 1024 // 4
    big = Storage("float32", bytes(numel * 4))
    sd = state_dict([("weight", Tensor(big, 0, [1024, numel // 1024], [numel // 1024, 1]))], [""])
    pkl, storages = torch_pickle(sd)
    add("evil-compressed.pth", torch_zip("evil-compressed", pkl, storages, compress_data=True),
        "data/0 is DEFLATE-compressed (method 8): 10 MiB of zeros (a [1024, 2560] float32 tensor) in about 10 KB; "
        "torch.save stores every record uncompressed; a reader must not inflate records",
        "record data/0: compression method 8 (deflate), only 0 (stored) is accepted", ["data/0", "compress"])

    return out


def make_truncated(full):
    return full[:len(full) // 2]


def make_torchscript():
    """A TorchScript archive (torch.jit.save): data.pkl of a __torch__ class, code/, constants.pkl, version.
    torch.load dispatches such zips to torch.jit.load (serialization.py _is_torchscript_zip), which compiles and
    can run the code; the weights_only bypass of CVE-2025-32434 went through it. The code here only adds 1."""
    data_pkl = (PROTO2 + op_global("__torch__", "M") + b"q\x00)\x81}(" + op_str("training") + b"q\x01\x88"
                + op_str("_is_full_backward_hook") + b"q\x02Nubq\x03.")
    code = (b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
            b"  _is_full_backward_hook : Optional[bool]\n  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n"
            b"    return torch.add(x, 1)\n")
    records = [("data.pkl", data_pkl, False), ("code/__torch__.py", code, True), ("constants.pkl", PROTO2 + b").", False),
               ("version", b"3\n", False)]
    return build_zip("evil-torchscript", records)


def make_setitem_list():
    pkl = (PROTO2 + OD_START + b"(" + op_str("weight") + op_tensor("FloatStorage", "0", 4, 0, [4], [1])
           + op_str("hooks") + b"](" + op_int(0) + op_int(1) + b"e"  # a list [0, 1]
           + b"(" + op_int(0) + op_str("overwritten") + b"u"  # SETITEMS on the list: list[0] = 'overwritten'
           + b"u.")
    return hostile_zip("evil-setitem-list", pkl), pkl.index(b"overwritten") + len("overwritten")


DEEP = 100000


def make_deep():
    pkl = PROTO2 + OD_START + op_str("deep") + b"]" * DEEP + b"a" * (DEEP - 1) + b"s."
    return hostile_zip("evil-deep", pkl, data_records=())


def make_random():
    out = bytearray()
    seed = b"sbp-pth-fixtures not-a-checkpoint"
    i = 0
    while len(out) < 4096:
        out += hashlib.sha256(seed + struct.pack("<I", i)).digest()
        i += 1
    out[0] = 0x17  # neither 'PK' nor a pickle PROTO byte
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Verification with real torch (optional; runs another interpreter)
# --------------------------------------------------------------------------------------------------
XCHECK_TORCH = r'''
import collections, sys, torch
path = sys.argv[1]
sd = collections.OrderedDict()
sd["w"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.25
sd["wt"] = (torch.arange(6, dtype=torch.float32).reshape(3, 2) - 1.5).t()
sd["idx"] = torch.tensor([3, -1, 70000], dtype=torch.int64)
sd["h"] = torch.tensor([1.0, -2.0, 0.5, 65504.0], dtype=torch.float16)
qv = torch.arange(8, dtype=torch.float32) * -1.0
sd["q"] = qv[:4]
sd["v"] = qv[4:]
sd["s"] = torch.tensor(7.0)
sd._metadata = collections.OrderedDict([("", {"version": 1}), ("sub", {"version": 1})])
torch.save(sd, path)
print(torch.__version__)
'''


def xcheck_standins():
    f = lambda vals: packs("f", vals)
    qv = Storage("float32", f([-float(i) for i in range(8)]))
    e = [
        ("w", plain_tensor("float32", [2, 3], f([i * 0.25 for i in range(6)]))),
        ("wt", Tensor(Storage("float32", f([i - 1.5 for i in range(6)])), 0, [2, 3], [1, 2])),
        ("idx", plain_tensor("int64", [3], packs("q", [3, -1, 70000]))),
        ("h", plain_tensor("float16", [4], packs("H", [0x3C00, 0xC000, 0x3800, 0x7BFF]))),
        ("q", Tensor(qv, 0, [4], [1])),
        ("v", Tensor(qv, 4, [4], [1])),
        ("s", Tensor(Storage("float32", f([7.0])), 0, [], [])),
    ]
    return state_dict(e, ["", "sub"])


VERIFY_TORCH = r'''
import collections, json, os, struct, subprocess, sys
import torch
d = sys.argv[1]
ref_dir = sys.argv[2]
manifest = json.load(open(os.path.join(d, "MANIFEST.json")))
PWN = "/tmp/sbp-pwned"
pwned_before = os.path.exists(PWN)

def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack_from("<Q", raw, 0)[0]
    h = json.loads(raw[8:8 + n])
    out = collections.OrderedDict()
    for k, e in h.items():
        if k == "__metadata__": continue
        b, en = e["data_offsets"]
        out[k] = (e["dtype"], e["shape"], raw[8 + n + b:8 + n + en])
    return out

def tbytes(t):
    t = t.contiguous()
    if t.dtype == torch.bool: t = t.to(torch.uint8)
    if t.dtype in (torch.float16, torch.bfloat16): t = t.view(torch.int16)
    return t.numpy().tobytes() if t.numel() else b""

def load(name, wo):
    return torch.load(os.path.join(d, name), map_location="cpu", weights_only=wo)

def try_load(name):
    try:
        return load(name, True), "weights_only=True"
    except Exception as e:
        msg = "%s: %s" % (type(e).__name__, str(e).split("WeightsUnpickler error: ")[-1].strip().splitlines()[-1][:160] if str(e) else "")
        return load(name, False), "weights_only=True REFUSED (%s); checked with weights_only=False" % msg

results = collections.OrderedDict()
problems = []
def check(cond, what):
    if not cond: problems.append(what)

# swin-small-map
obj, how = try_load("swin-small-map.pth")
ref = read_st(os.path.join(ref_dir, "swin-small-map.safetensors"))
sd = obj["state_dict"]
names = [k for k in ref if k.startswith("backbone.") or k.startswith("cls_head.")]
check(list(sd.keys()) == names, "swin keys")
for k in names:
    dt, shape, raw = ref[k]
    t = sd[k]
    check(list(t.shape) == shape, "swin shape " + k)
    if dt == "I32":
        check(t.dtype == torch.int64 and t.tolist() == torch.frombuffer(bytearray(raw), dtype=torch.int32).reshape(shape).tolist(), "swin int " + k)
    else:
        check(t.dtype == torch.float32 and tbytes(t) == raw, "swin f32 " + k)
check(obj["meta"]["epoch"] == 30 and isinstance(obj["meta"]["config"], str), "swin meta")
check(hasattr(sd, "_metadata") and sd._metadata[""] == {"version": 1}, "swin _metadata")
results["swin-small-map.pth"] = "%s: %d tensors, dtypes/shapes/values equal to the reference; meta %s" % (how, len(sd), sorted(obj["meta"]))

# videomae-tiny
obj, how = try_load("videomae-tiny.pth")
ref = read_st(os.path.join(ref_dir, "videomae-tiny.safetensors"))
names = [k for k in ref if k not in ("input", "target", "logits", "loss") and not k.startswith("grad.")]
check(list(obj.keys()) == ["module." + k for k in names], "videomae keys")
for k in names:
    t = obj["module." + k]
    check(t.dtype == torch.float32 and list(t.shape) == ref[k][1] and tbytes(t) == ref[k][2], "videomae " + k)
cw = obj["module.classifier.weight"]
check(cw.stride() == (1, 5) and not cw.is_contiguous(), "videomae classifier stride %s" % (cw.stride(),))
q = obj["module.videomae.encoder.layer.0.attention.attention.q_bias"]
v = obj["module.videomae.encoder.layer.0.attention.attention.v_bias"]
check(q.storage().data_ptr() == v.storage().data_ptr() and v.storage_offset() == 16, "videomae shared q/v")
pb = obj["module.videomae.embeddings.patch_embeddings.projection.bias"]
check(pb.storage_offset() == 7 and len(pb.storage()) == 29, "videomae offset tensor")
results["videomae-tiny.pth"] = ("%s: %d tensors equal to the reference; classifier.weight stride %s; q_bias/v_bias share one "
    "storage (v_bias offset %d); projection.bias offset %d in a %d-element storage") % (
    how, len(obj), cw.stride(), v.storage_offset(), pb.storage_offset(), len(pb.storage()))

# dtypes + legacy
exp = read_st(os.path.join(d, "dtypes.expected.safetensors"))
detail = [f for f in manifest["files"] if f["name"] == "dtypes.pth"][0]["entries_detail"]
for name in ("dtypes.pth", "dtypes-legacy.pth"):
    obj, how = try_load(name)
    check(list(obj.keys()) == list(exp.keys()), name + " keys")
    for e in detail:
        t = obj[e["name"]]
        check(str(t.dtype) == "torch." + e["dtype"], "%s %s dtype %s" % (name, e["name"], t.dtype))
        check(list(t.shape) == e["shape"] and list(t.stride()) == e["stride"] and t.storage_offset() == e["storage_offset"],
              "%s %s geometry %s %s" % (name, e["name"], tuple(t.shape), t.stride()))
        check(tbytes(t.float()) == exp[e["name"]][2], "%s %s .float() bits" % (name, e["name"]))
        check(list(t.shape) == exp[e["name"]][1], "%s %s expected shape" % (name, e["name"]))
    results[name] = "%s: %d entries; dtype, shape, stride, storage_offset as listed; .float() bit-equal to dtypes.expected.safetensors" % (how, len(obj))

# hostile: each in its own process (a crash or an over-read must not take this one down)
child = r"""
import sys, torch
try:
    r = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
except BaseException as e:
    s = str(e).split("WeightsUnpickler error: ")[-1].strip().splitlines()
    print("REFUSED %s: %s" % (type(e).__name__, (s[-1] if s else "")[:220]))
    sys.exit(0)
def summary(o, depth=0):
    if depth > 3: return "..."
    if isinstance(o, dict): return "{" + ", ".join("%r: %s" % (k, summary(v, depth + 1)) for k, v in list(o.items())[:4]) + "}"
    if isinstance(o, list):
        n = 0
        while isinstance(o, list) and o: o = o[0]; n += 1
        return "<lists nested %d deep>" % (n + (1 if isinstance(o, list) else 0))
    if isinstance(o, torch.Tensor):
        try: vals = o.flatten()[:4].tolist()
        except Exception as e: vals = "unreadable: %s" % e
        return "tensor%s first %s" % (tuple(o.shape), vals)
    return type(o).__name__
print("LOADED " + summary(r))
"""
for f in manifest["files"]:
    if f["kind"] != "hostile": continue
    p = subprocess.run([sys.executable, "-c", child, os.path.join(d, f["name"])], capture_output=True, text=True, timeout=300)
    line = (p.stdout.strip().splitlines() or [""])[-1]
    if p.returncode != 0:
        line = "CRASHED rc=%d %s" % (p.returncode, (p.stderr.strip().splitlines() or [""])[-1][:200])
    results[f["name"]] = line
check(os.path.exists(PWN) == pwned_before, "/tmp/sbp-pwned was created")
print(json.dumps({"torch": torch.__version__, "results": results, "problems": problems}, indent=1))
'''


def verify_with_torch(out_dir, python):
    probe = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("verify: torch is not importable by %s; skipped" % python)
        return True
    version = probe.stdout.strip()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tpath = os.path.join(tmp, "xcheck.pth")
        subprocess.run([python, "-c", XCHECK_TORCH, tpath], check=True, capture_output=True, text=True)
        theirs = open(tpath, "rb").read()
    pkl, storages = torch_pickle(xcheck_standins())
    major_minor = tuple(int(x) for x in version.split("+")[0].split(".")[:2] if x.isdigit())
    if major_minor < (2, 1):
        mine = torch_zip("xcheck", pkl, storages, layout="1x")
        same = mine == theirs
        print("verify: torch %s torch.save vs this writer (1.x layout), small state dict with views/shared storage: %s" % (
            version, "byte-identical" if same else "DIFFERENT"))
    else:
        import zipfile
        z = zipfile.ZipFile(io.BytesIO(theirs))
        same = z.read("xcheck/data.pkl") == pkl and all(z.read("xcheck/data/" + k) == s.data for k, s in storages)
        print("verify: torch %s torch.save vs this writer: data.pkl and data records %s (records: %s)" % (
            version, "identical" if same else "DIFFERENT", [i.filename for i in z.infolist()]))
    ok &= same
    r = subprocess.run([python, "-c", VERIFY_TORCH, out_dir, REFERENCE], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        return False
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    print("verify: torch %s" % rep["torch"])
    for k, v in rep["results"].items():
        print("  %-36s %s" % (k, v))
    if rep["problems"]:
        print("verify: PROBLEMS: %s" % rep["problems"])
        ok = False
    return ok


# --------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (tests/Sbp.Models.Tests/Fixtures/Pth)")
    ap.add_argument("--verify-with-torch", action="store_true", help="check the files with real torch (skipped if missing)")
    ap.add_argument("--torch-python", default=sys.executable, help="interpreter with torch for --verify-with-torch")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    files = []  # (name, bytes, kind, info)
    swin, swin_info = make_swin()
    files.append(("swin-small-map.pth", swin, "state-dict", swin_info))
    r21d, r21d_info = make_r2plus1d()
    files.append(("r2plus1d-tiny-eval.pth", r21d, "state-dict", r21d_info))
    vmae, vmae_info = make_videomae()
    files.append(("videomae-tiny.pth", vmae, "state-dict", vmae_info))
    dt, dt_info, exp, exp_info = make_dtypes()
    files.append(("dtypes.pth", dt, "state-dict", dt_info))
    files.append(("dtypes.expected.safetensors", exp, "expected", exp_info))
    leg, leg_info = make_dtypes_legacy()
    files.append(("dtypes-legacy.pth", leg, "legacy", leg_info))

    for name, data, info in make_hostile():
        files.append((name, data, "hostile", info))

    def hostile(name, data, attack, refuse_at, names):
        files.append((name, data, "hostile", collections.OrderedDict([("attack", attack), ("refuse_at", refuse_at), ("names", names)])))

    hostile("evil-truncated.pth", make_truncated(vmae),
            "videomae-tiny.pth cut at half its length (%d of %d bytes): no central directory, last record cut" % (len(vmae) // 2, len(vmae)),
            "zip end-of-central-directory record not found", ["zip", "central directory"])
    hostile("evil-torchscript.pth", make_torchscript(),
            "a TorchScript archive (constants.pkl, code/__torch__.py deflated, data.pkl of a __torch__.M object): torch.load "
            "hands such zips to torch.jit.load, which compiles and runs the code (the CVE-2025-32434 weights_only bypass)",
            "record constants.pkl present (TorchScript archive); also GLOBAL __torch__.M and NEWOBJ in data.pkl",
            ["TorchScript", "constants.pkl"])
    sl, sl_off = make_setitem_list()
    hostile("evil-setitem-list.pth", sl,
            "SETITEMS whose target is a list (list[0] = 'overwritten') inside a state dict: the CVE-2026-24747 shape "
            "(SETITEM/SETITEMS on a non-dict, fixed in torch 2.10)",
            "SETITEMS (opcode 'u' at data.pkl offset %d) on a list" % sl_off, ["SETITEMS"])
    hostile("evil-deep.pth", make_deep(),
            "100,000 EMPTY_LIST then 99,999 APPEND: a list nested 100,000 deep (stack of 100,000 items; recursion in any "
            "recursive walker, printer or converter)",
            "stack depth / nesting limit (EMPTY_LIST ']' opcodes from data.pkl offset %d)" % (len(PROTO2 + OD_START + op_str("deep"))),
            ["depth", "stack", "nest"])
    hostile("not-a-checkpoint.pth", make_random(),
            "4096 pseudo-random bytes (sha256 counter stream): neither a zip (PK\\x03\\x04) nor a legacy pickle (0x80 0x02 + magic)",
            "format detection: first bytes 0x17...", ["format", "not a"])

    manifest_files = []
    for name, data, kind, info in files:
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        entry = collections.OrderedDict([("name", name), ("kind", kind), ("size", len(data)),
                                         ("sha256", hashlib.sha256(data).hexdigest())])
        entry.update(info)
        manifest_files.append(entry)
        print("%-36s %9d  %s" % (name, len(data), kind))
    manifest = collections.OrderedDict([
        ("generator", COMMAND),
        ("readme", "tools/PthFixtures/README.md"),
        ("notes", "kinds: state-dict (valid zip checkpoint), legacy (valid non-zip checkpoint), expected (safetensors with "
                  "the values a reader must produce), hostile (a safe reader must refuse it: 'refuse_at' is the first thing "
                  "to refuse in stream order; 'names' are tokens one of which the refusal message should contain)"),
        ("files", manifest_files),
    ])
    with open(os.path.join(args.out, "MANIFEST.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    total = sum(len(d) for _, d, _, _ in files) + os.path.getsize(os.path.join(args.out, "MANIFEST.json"))
    print("total %d bytes in %d files + MANIFEST.json" % (total, len(files)))

    if args.verify_with_torch:
        if not verify_with_torch(os.path.abspath(args.out), args.torch_python):
            sys.exit(1)


if __name__ == "__main__":
    main()
