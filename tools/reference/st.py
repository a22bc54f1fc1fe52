"""Minimal safetensors reader/writer and number-format conversions for the reference.

Written from the format description (8-byte little-endian header length N, N bytes of JSON
`name -> {dtype, shape, data_offsets: [begin, end]}` relative to the data section, optional
`__metadata__`, then raw little-endian data). Independent of the engine's C++ reader and of the
`safetensors` Python package (not installed next to torch 1.13 here).

Tensors travel as (dtype_string, numpy_array) pairs. Raw storage types:
  F32 -> float32, F64 -> float64, F16 -> float16, BF16 -> uint16 bits, F8_E4M3 -> uint8 bits,
  I64/I32/U8 -> the integer type.
to_f32 / from_f32 convert between those raw arrays and float32 values:
  BF16: round to nearest even on the upper 16 bits.
  F8_E4M3 ("e4m3fn", bias 7, no infinities, NaN = 0x7F/0xFF, max 448): round to nearest even,
  saturating at +-448 (the quantiser clamps first, so no value ever maps to NaN).
"""

import json
import os
import struct

import numpy as np

_RAW = {
    "F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": np.uint16,
    "F8_E4M3": np.uint8, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
}


# ---------------------------------------------------------------------------------------------
# Number formats
# ---------------------------------------------------------------------------------------------

def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round-to-nearest-even float32 -> bf16 bits (inputs here are finite)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def _e4m3_table():
    """float32 value of every E4M3 code (NaN for 0x7F / 0xFF)."""
    vals = np.zeros(256, dtype=np.float64)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp = (code >> 3) & 0xF
        man = code & 0x7
        if exp == 0xF and man == 0x7:
            vals[code] = np.nan
        elif exp == 0:
            vals[code] = sign * man * 2.0 ** -9
        else:
            vals[code] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return vals.astype(np.float32)


E4M3_VALUES = _e4m3_table()
# Non-negative finite codes 0x00..0x7E are increasing in value.
_E4M3_POS = E4M3_VALUES[:0x7F].astype(np.float64)


def e4m3_to_f32(codes):
    return E4M3_VALUES[codes.astype(np.int64)]


def f32_to_e4m3(x):
    """Saturating round-to-nearest-even float -> E4M3 codes.

    For |x| between two adjacent codes the nearer wins; on an exact tie the code with an even
    mantissa (code & 1 == 0) wins, which is RNE including across binade boundaries.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.minimum(np.abs(x), 448.0)
    hi = np.searchsorted(_E4M3_POS, a, side="left")  # first code with value >= a
    hi = np.minimum(hi, 0x7E)
    lo = np.maximum(hi - 1, 0)
    d_lo = a - _E4M3_POS[lo]
    d_hi = _E4M3_POS[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo)
    code = np.where(_E4M3_POS[hi] == a, hi, code)
    sign = np.signbit(x).astype(np.int64) << 7
    return (code | sign).astype(np.uint8)


def to_f32(dtype, raw):
    if dtype == "BF16":
        return bf16_to_f32(raw)
    if dtype == "F8_E4M3":
        return e4m3_to_f32(raw)
    return raw.astype(np.float32)


def from_f32(dtype, x):
    if dtype == "BF16":
        return f32_to_bf16(x)
    if dtype == "F8_E4M3":
        return f32_to_e4m3(x)
    return np.asarray(x, dtype=_RAW[dtype])


def quantize_fp8_blocks(w, block=128):
    """Block-wise E4M3 quantisation of a 2-D float32 matrix.

    Per 128x128 block (edge blocks are partial): scale = amax/448 (float32), q = RNE(clamp(w/scale)).
    Returns (codes uint8 [r, c], scale_inv float32 [ceil(r/128), ceil(c/128)]); the stored
    `weight_scale_inv` is the multiplicative dequantisation scale: w ~= e4m3(q) * scale_inv.
    """
    w = np.asarray(w, dtype=np.float32)
    r, c = w.shape
    br, bc = -(-r // block), -(-c // block)
    scale = np.zeros((br, bc), dtype=np.float32)
    codes = np.zeros((r, c), dtype=np.uint8)
    for i in range(br):
        for j in range(bc):
            blk = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            amax = np.float32(np.max(np.abs(blk)))
            s = np.float32(amax / np.float32(448.0)) if amax > 0 else np.float32(1.0)
            scale[i, j] = s
            codes[i * block:(i + 1) * block, j * block:(j + 1) * block] = f32_to_e4m3(
                (blk / s).astype(np.float32))
    return codes, scale


def dequantize_fp8_blocks(codes, scale_inv, block=128):
    """w[r, c] = e4m3(codes[r, c]) * scale_inv[r // 128, c // 128], one float32 multiply."""
    vals = e4m3_to_f32(codes)
    s = np.repeat(np.repeat(scale_inv, block, axis=0), block, axis=1)[:codes.shape[0], :codes.shape[1]]
    return (vals * s).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n


def load_file(path):
    """name -> (dtype, numpy array with the raw storage type)."""
    header, base = read_header(path)
    header.pop("__metadata__", None)
    blob = np.fromfile(path, dtype=np.uint8)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        np_t = _RAW[info["dtype"]]
        arr = blob[base + b:base + e].view(np_t).reshape(info["shape"])
        out[name] = (info["dtype"], arr.copy())
    return out


def save_file(tensors, path, metadata=None):
    """tensors: ordered dict name -> (dtype, array). Header padded with spaces to 8 bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    payload = []
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr, dtype=_RAW[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        payload.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for data in payload:
            f.write(data)


def load_checkpoint(model_dir):
    """All tensors of a HF checkpoint directory: model.safetensors or an index with shards."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(weight_map.values())):
            part = load_file(os.path.join(model_dir, shard))
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{name} found in {shard} but index says {weight_map.get(name)}")
                out[name] = t
        missing = set(weight_map) - set(out)
        if missing:
            raise ValueError(f"tensors listed in the index but absent: {sorted(missing)[:5]}")
        return out
    return load_file(os.path.join(model_dir, "model.safetensors"))


def save_checkpoint(tensors, model_dir, n_shards=1):
    """Writes model.safetensors, or n_shards files plus model.safetensors.index.json.

    Sharding cuts the ordered tensor list into n_shards runs of roughly equal bytes, so one
    layer's tensors can span two files (as in the released checkpoints).
    """
    os.makedirs(model_dir, exist_ok=True)
    if n_shards == 1:
        save_file(tensors, os.path.join(model_dir, "model.safetensors"), {"format": "pt"})
        return
    names = list(tensors)
    sizes = [tensors[n][1].nbytes for n in names]
    total = sum(sizes)
    shards, cur, acc = [], [], 0
    for n, s in zip(names, sizes):
        cur.append(n)
        acc += s
        if acc >= total * (len(shards) + 1) / n_shards and len(shards) < n_shards - 1:
            shards.append(cur)
            cur = []
    shards.append(cur)
    weight_map = {}
    for i, group in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: tensors[n] for n in group}, os.path.join(model_dir, fname), {"format": "pt"})
        weight_map.update({n: fname for n in group})
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
