#!/usr/bin/env python3
"""PyTorch definitions of Tangent's three built-in architectures, with PyTorch's own parameter
names, a safetensors writer, and the reference numbers (logits, kNorm) the import is checked
against.

- Mantis: the module layout (and so the state_dict names) of the reference implementation
  (github.com/vfeofanov/mantis: MantisV1's `tokgen_unit` / `transf_unit`, MantisTrainer's
  FineTuningNetwork with `encoder`, `head`, `adapter`), written here independently with the
  same math: what a user's `fine_tuned_model.state_dict()` holds imports as is.
- Cnn1d and Transformer: plain PyTorch models of the shapes of Tangent's `cnn1d` and
  `transformer` (same padding, LayerNorm epsilon 1e-3 as tfjs's default, exact GELU).

Tangent's input is [n, length, channels]; these models take PyTorch's [n, channels, length].

The `safetensors` package is not installable here, so `save_safetensors` writes the format
itself (8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}}
with `__metadata__`, padded with spaces to 8 bytes, then the tensors' little-endian bytes,
contiguous, in the same order as the reference writer: by dtype size, then name). Nothing here
uses pickle.

Usage: /usr/bin/python3 bench/torch_models.py make DIR
  DIR/spec.json  {"architecture", "config", "seed", "n", "subsets": ["all", "head", ...],
                  "dtype": "F32"|"F16"|"BF16"|"F64" (weights file dtype, default F32),
                  "k": true (compute kNorm; default true)}
writes DIR/weights.safetensors (the random model's state_dict), DIR/x.bin (float32 [n, L, C],
Tangent's layout) and DIR/expected.json {"logits": [n·V], "kNorm": {subset: [n]},
"parameters": {subset: P}, "torch": version}, all in float64 (the model in double precision on
the same weights that the file holds).

       /usr/bin/python3 bench/torch_models.py bench DIR
the same, with spec.json's "accuracyN" (samples of the float64 reference), "time" ({subset:
samples} timed in float32 by vmap(jacrev) over that subset, "timeChunk" samples at a time) and
"threads"; writes DIR/timings.json too (used by `npm run bench:akg` for Mantis at its real size).
"""
import json
import math
import os
import resource
import struct
import sys
import time
from copy import deepcopy

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors

DTYPES = {
    torch.float64: ("F64", 8),
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
    torch.int64: ("I64", 8),
    torch.int32: ("I32", 4),
}


def tensor_bytes(t):
    """Little-endian, C-order bytes of a tensor (bf16 through its int16 bit pattern)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def save_safetensors(path, tensors, metadata=None):
    entries = []
    for name, t in tensors.items():
        dtype, size = DTYPES[t.dtype]
        entries.append((-size, name, dtype, list(t.shape), tensor_bytes(t)))
    entries.sort()
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for _, name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, data in entries:
            f.write(data)


# ---------------------------------------------------------------------------------------------
# Mantis (names and math of the reference implementation)


class Convolution(nn.Module):
    def __init__(self, kernel_size, out_channels):
        super().__init__()
        self.conv = nn.Conv1d(1, out_channels, kernel_size=kernel_size, padding=kernel_size // 2)

    def forward(self, x):  # [B, 1, L] -> [B, L, W]
        return self.conv(x).transpose(1, 2)


class LinearEncoder(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.linear = nn.Linear(input_dim, output_dim)
        self.layer_norm = nn.LayerNorm(output_dim, eps=1e-15)

    def forward(self, x):
        return self.layer_norm(self.linear(x))


class ScalarEncoder(nn.Module):
    def __init__(self, k, hidden_dim):
        super().__init__()
        self.w = nn.Parameter(torch.rand(1, hidden_dim))
        self.b = nn.Parameter(torch.rand(1, hidden_dim))
        self.k = k
        self.layer_norm = nn.LayerNorm(hidden_dim, eps=1e-15)

    def forward(self, x):
        return self.layer_norm(x * self.w + self.k * self.b)


class MultiScaledScalarEncoder(nn.Module):
    def __init__(self, scales, hidden_dim, epsilon):
        super().__init__()
        self.register_buffer("scales", torch.tensor(scales))
        self.epsilon = epsilon
        self.encoders = nn.ModuleList([ScalarEncoder(k, hidden_dim) for k in scales])

    def forward(self, x):
        alpha = abs(1 / torch.log(torch.matmul(abs(x), 1 / self.scales.reshape(1, -1)) + self.epsilon))
        alpha = (alpha / torch.sum(alpha, dim=-1, keepdim=True)).unsqueeze(-1)
        y = torch.stack([e(x) for e in self.encoders], dim=-2)
        return torch.sum(y * alpha, dim=-2)


def ts_scaler(x):
    return (x - torch.mean(x, dim=2, keepdim=True)) / (torch.std(x, dim=2, keepdim=True) + 1e-5)


class TokenGeneratorUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_patches = c["patches"]
        window = c["length"] // c["patches"]
        kernel = window + 1 if window % 2 == 0 else window
        self.convs = nn.ModuleList([Convolution(kernel, c["dim"]) for _ in range(2)])
        self.layer_norms = nn.ModuleList([nn.LayerNorm(c["dim"], eps=1e-5) for _ in range(2)])
        self.scalar_encoders = nn.ModuleList(
            [MultiScaledScalarEncoder(c["scalarScales"], c["scalarDim"], c["scalarEpsilon"]) for _ in range(2)])
        self.linear_encoder = LinearEncoder(2 * c["scalarDim"] + 2 * c["dim"], c["dim"])

    def forward(self, x):  # [B, 1, L]
        with torch.no_grad():
            patched = x.reshape(x.shape[0], self.num_patches, -1)
            stats = [patched.mean(-1, keepdim=True), patched.std(-1, keepdim=True)]
        scalars = [enc(s) for enc, s in zip(self.scalar_encoders, stats)]
        with torch.no_grad():
            diff = F.pad(torch.diff(x, n=1, dim=2), (0, 1))
        branches = [self.convs[0](ts_scaler(diff)), self.convs[1](ts_scaler(x))]
        pooled = []
        for norm, e in zip(self.layer_norms, branches):
            e = norm(e)
            pooled.append(e.reshape(e.shape[0], self.num_patches, -1, e.shape[2]).mean(2))
        return self.linear_encoder(torch.cat([torch.cat(pooled, -1), torch.cat(scalars, -1)], -1))


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):  # [T, B, d]
        return x + self.pe[: x.size(0)]


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project_out else nn.Identity()

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ModuleList([PreNorm(dim, Attention(dim, heads, dim_head, dropout)),
                           PreNorm(dim, FeedForward(dim, mlp_dim, dropout))])
            for _ in range(depth)])

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class TransformerUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pos_encoder = PositionalEncoding(c["dim"], c["patches"] + 1)
        self.cls_token = nn.Parameter(torch.randn(c["dim"]))
        self.transformer = Transformer(c["dim"], c["depth"], c["heads"], c["headDim"], c["mlpDim"], c["dropout"])

    def forward(self, x):  # [B, P, W]
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        z = torch.cat([cls, x], 1)
        z = self.pos_encoder(z.transpose(0, 1)).transpose(0, 1)
        return self.transformer(z)[:, 0]


class MantisEncoder(nn.Module):
    """MantisV1: tokgen_unit, transf_unit, and the (unused for classification) projector prj."""

    def __init__(self, c):
        super().__init__()
        self.tokgen_unit = TokenGeneratorUnit(c)
        self.transf_unit = TransformerUnit(c)
        self.prj = nn.Sequential(nn.LayerNorm(c["dim"]), nn.Linear(c["dim"], c["dim"]))

    def forward(self, x):  # [B, 1, L]
        return self.transf_unit(self.tokgen_unit(x))


class LinearChannelCombiner(nn.Module):
    def __init__(self, num_channels, new_num_channels):
        super().__init__()
        self.transformation = nn.Linear(num_channels, new_num_channels)

    def forward(self, x):  # [B, C, L]
        return self.transformation(x.transpose(1, 2)).transpose(1, 2)


class Mantis(nn.Module):
    """MantisTrainer's FineTuningNetwork: adapter (optional), encoder per channel, head."""

    def __init__(self, c):
        super().__init__()
        self.encoder = MantisEncoder(c)
        ch = c["adapterChannels"] or c["channels"]
        norm = nn.BatchNorm1d(c["dim"] * ch) if c["headNorm"] == "batchnorm" else nn.LayerNorm(c["dim"] * ch)
        self.head = nn.Sequential(norm, nn.Linear(c["dim"] * ch, c["classes"]))
        self.adapter = LinearChannelCombiner(c["channels"], c["adapterChannels"]) if c["adapterChannels"] else None

    def forward(self, x):  # [B, C, L]
        if self.adapter is not None:
            x = self.adapter(x)
        return self.head(torch.cat([self.encoder(x[:, [i], :]) for i in range(x.shape[1])], dim=-1))


MANTIS_DEFAULTS = dict(length=512, channels=1, classes=10, patches=32, dim=256, depth=6, heads=8, headDim=128,
                       mlpDim=512, scalarDim=32, scalarScales=[1e-4, 1e-3, 1e-2, 1e-1, 1, 1e1, 1e2, 1e3, 1e4],
                       scalarEpsilon=1.1, headNorm="batchnorm", adapterChannels=0, dropout=0.1, seed=1)

# ---------------------------------------------------------------------------------------------
# The reference 1D-CNN and transformer, PyTorch-native names

CNN1D_DEFAULTS = dict(length=512, channels=1, classes=10, filters=[32, 64, 64], kernelSizes=[8, 5, 3], pool=2,
                      dropout=0.1, seed=1)
TRANSFORMER_DEFAULTS = dict(length=512, channels=1, classes=10, patch=16, dim=64, depth=2, heads=4, mlpDim=128,
                            dropout=0.1, seed=1)


def same_pad(k):
    """tfjs 'same' padding of a stride-1 convolution: the odd zero goes after the series."""
    return (k - 1) // 2, (k - 1) - (k - 1) // 2


class Cnn1d(nn.Module):
    """convs.{i} (Conv1d, 'same', ReLU) with max-pooling between them, global mean, head (Linear)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        chans = [c["channels"]] + list(c["filters"])
        self.convs = nn.ModuleList([nn.Conv1d(chans[i], chans[i + 1], k) for i, k in enumerate(c["kernelSizes"])])
        self.head = nn.Linear(chans[-1], c["classes"])

    def forward(self, h):  # [B, C, L]
        for i, conv in enumerate(self.convs):
            h = torch.relu(conv(F.pad(h, same_pad(conv.kernel_size[0]))))
            if self.c["pool"] > 1 and i < len(self.convs) - 1:
                h = F.max_pool1d(h, self.c["pool"])
        return self.head(h.mean(-1))


def sinusoidal(t, d):
    code = np.zeros((t, d))
    for pos in range(t):
        for i in range(d):
            freq = math.pow(10000, -(2 * (i // 2)) / d)
            code[pos, i] = math.sin(pos * freq) if i % 2 == 0 else math.cos(pos * freq)
    return torch.tensor(code, dtype=torch.float32)


class Block(nn.Module):
    def __init__(self, d, mlp):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-3), nn.LayerNorm(d, eps=1e-3)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp1, self.mlp2 = nn.Linear(d, mlp), nn.Linear(mlp, d)


class TransformerClassifier(nn.Module):
    """patch (Conv1d, stride = kernel = patch), patch_norm, cls, blocks.{b}.{ln1, qkv, proj, ln2,
    mlp1, mlp2}, head_norm, head; LayerNorm epsilon 1e-3 (tfjs's default), exact GELU."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["dim"]
        self.patch = nn.Conv1d(c["channels"], d, c["patch"], stride=c["patch"])
        self.patch_norm = nn.LayerNorm(d, eps=1e-3)
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, c["mlpDim"]) for _ in range(c["depth"])])
        self.head_norm = nn.LayerNorm(d, eps=1e-3)
        self.head = nn.Linear(d, c["classes"])
        self.register_buffer("pos", sinusoidal(c["length"] // c["patch"] + 1, d), persistent=False)

    def forward(self, x):  # [B, C, L]
        h, d = self.c["heads"], self.c["dim"]
        z = self.patch_norm(self.patch(x).transpose(1, 2))
        z = torch.cat([self.cls.expand(z.shape[0], 1, d), z], 1) + self.pos.to(z.dtype)
        B, T, _ = z.shape
        for blk in self.blocks:
            q, k, v = (t.reshape(B, T, h, d // h).transpose(1, 2) for t in blk.qkv(blk.ln1(z)).split(d, -1))
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), -1)
            z = z + blk.proj((p @ v).transpose(1, 2).reshape(B, T, d))
            z = z + blk.mlp2(F.gelu(blk.mlp1(blk.ln2(z))))
        return self.head(self.head_norm(z[:, 0]))


def build(arch, config):
    if arch == "mantis":
        return Mantis({**MANTIS_DEFAULTS, **config})
    if arch == "cnn1d":
        return Cnn1d({**CNN1D_DEFAULTS, **config})
    if arch == "transformer":
        return TransformerClassifier({**TRANSFORMER_DEFAULTS, **config})
    raise SystemExit(f"unknown architecture {arch}")


def randomize(model, seed):
    """Random weights everywhere (normalisation affines and BatchNorm statistics too), seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or name.startswith("head.0")):
                p.copy_(1 + 0.2 * (torch.rand(p.shape, generator=g) - 0.5) if name.endswith("weight")
                        else 0.1 * (torch.rand(p.shape, generator=g) - 0.5))
            elif name.endswith("cls_token") or name == "cls":
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith(".w") or name.endswith(".b"):
                p.copy_(torch.rand(p.shape, generator=g))
            else:
                fan_in = p.shape[1] * (p.shape[2] if p.ndim > 2 else 1) if p.ndim > 1 else p.shape[0]
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(fan_in))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.5 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                b.fill_(100)
    return model.eval()


def series(n, length, channels, seed):
    """Float32 series [n, C, L]: random walks plus sines of random frequency, at varied scales."""
    g = torch.Generator().manual_seed(seed + 7)
    t = torch.arange(length, dtype=torch.float64)
    walk = torch.cumsum(torch.randn(n, channels, length, generator=g, dtype=torch.float64), -1) * 0.3
    freq = torch.rand(n, channels, 1, generator=g, dtype=torch.float64) * 0.3 + 0.02
    scale = torch.exp(torch.randn(n, channels, 1, generator=g, dtype=torch.float64))
    return ((walk + torch.sin(t * freq) * 2) * scale + torch.randn(n, channels, 1, generator=g, dtype=torch.float64)).float()


def subset_names(arch, names, subset):
    if subset == "all":
        # Mantis's pre-training projector is not part of the classifier (its J is zero anyway).
        return [n for n in names if not n.startswith("encoder.prj.")]
    if arch == "mantis":
        prefixes = {"head": ("head.",), "adapter_head": ("head.", "adapter."), "adapter": ("adapter.",)}[subset]
    else:
        prefixes = {"head": ("head.",)}[subset]
    return [n for n in names if n.startswith(prefixes)]


def subset_jacobian_fn(model, arch, subset):
    """(f, sub): f(sub, xi) = logits of one sample as a function of the subset's parameters only
    (the others fixed), so that jacrev differentiates and backpropagates no further than needed."""
    from functorch import make_functional_with_buffers

    fmodel, params, buffers = make_functional_with_buffers(model)
    names = [n for n, _ in model.named_parameters()]
    idx = [names.index(n) for n in subset_names(arch, names, subset)]

    def f(sub, xi):
        p = list(params)
        for j, k in enumerate(idx):
            p[k] = sub[j]
        return fmodel(p, buffers, xi.unsqueeze(0)).squeeze(0)

    return f, tuple(params[k] for k in idx)


def knorm_of(f, sub, x, chunk):
    """kNorm = ‖J Jᵀ‖_F per sample over `sub`, by functorch vmap(jacrev), chunk samples at a time."""
    from functorch import jacrev, vmap

    out = []
    for i in range(0, x.shape[0], chunk):
        jac = vmap(jacrev(f), (None, 0))(sub, x[i : i + chunk])
        K = sum(torch.einsum("ncp,ndp->ncd", j, j) for j in (t.reshape(t.shape[0], t.shape[1], -1) for t in jac))
        out.append(torch.linalg.matrix_norm(K))
        del jac
    return torch.cat(out)


def knorms(model, x, subsets, arch, chunk=4):
    """kNorm per sample for each subset (trainable parameters only), and the subsets' sizes."""
    out, sizes = {}, {}
    for s in subsets:
        f, sub = subset_jacobian_fn(model, arch, s)
        sizes[s] = sum(p.numel() for p in sub)
        out[s] = knorm_of(f, sub, x, chunk).tolist()
    return out, sizes


def reference_model(d, spec):
    """The seeded random model of a spec, its weights written to DIR/weights.safetensors in the
    spec's dtype, reloaded from exactly those values; and the spec's inputs written to DIR/x.bin."""
    arch, cfg, seed, n = spec["architecture"], spec.get("config", {}), int(spec.get("seed", 1)), int(spec["n"])
    torch.manual_seed(seed)
    model = randomize(build(arch, cfg), seed)
    full = {**{"mantis": MANTIS_DEFAULTS, "cnn1d": CNN1D_DEFAULTS, "transformer": TRANSFORMER_DEFAULTS}[arch], **cfg}
    dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}[spec.get("dtype", "F32")]
    # Weights (and BatchNorm statistics) in the requested dtype; Mantis's fixed buffers (the scalar
    # encoder's scales, the position code) stay float32, as the model computes with them.
    fixed = lambda k: k.endswith(".scales") or k.endswith(".pe")
    state = {k: (v.to(dtype) if v.is_floating_point() and not fixed(k) else v) for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(d, "weights.safetensors"), state, {"format": "pt", "architecture": arch})
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    x = series(n, full["length"], full["channels"], seed)
    np.ascontiguousarray(x.numpy().transpose(0, 2, 1)).astype("<f4").tofile(os.path.join(d, "x.bin"))
    return model.eval(), x


def reference_numbers(model, x, spec):
    """Logits and kNorm per subset in float64 (a copy of the model in double precision)."""
    m64 = deepcopy(model).double().eval()
    xd = x.double()
    with torch.no_grad():
        logits = m64(xd)
    result = {"torch": torch.__version__, "logits": logits.reshape(-1).tolist(), "classes": int(logits.shape[1])}
    if spec.get("k", True):
        kn, sizes = knorms(m64, xd, spec.get("subsets", ["all", "head"]), spec["architecture"], int(spec.get("chunk", 4)))
        result["kNorm"] = kn
        result["parameters"] = sizes
    return result


def make(d):
    spec = json.load(open(os.path.join(d, "spec.json")))
    model, x = reference_model(d, spec)
    json.dump(reference_numbers(model, x, spec), open(os.path.join(d, "expected.json"), "w"))


def bench(d):
    """make, plus float32 timings of kNorm per subset on `time` samples (the `bench:akg` reference).
    spec["time"] = {subset: samples}; spec["threads"] (default 1). Writes DIR/timings.json."""
    spec = json.load(open(os.path.join(d, "spec.json")))
    model, x = reference_model(d, spec)
    t0 = time.perf_counter()
    json.dump(reference_numbers(model, x[: int(spec.get("accuracyN", x.shape[0]))], spec), open(os.path.join(d, "expected.json"), "w"))
    reference_s = time.perf_counter() - t0
    torch.set_num_threads(int(spec.get("threads", 1)))
    timings = {}
    for subset, n in spec.get("time", {}).items():
        f, sub = subset_jacobian_fn(model, spec["architecture"], subset)
        xs = series(int(n), x.shape[2], x.shape[1], int(spec.get("seed", 1)) + 1)
        chunk = int(spec.get("timeChunk", {}).get(subset, 1))
        knorm_of(f, sub, xs[:chunk], chunk)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        knorm_of(f, sub, xs, chunk)
        timings[subset] = {"n": int(n), "chunk": chunk, "seconds": time.perf_counter() - t0, "cpuSeconds": time.process_time() - c0,
                           "parameters": sum(p.numel() for p in sub)}
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "referenceSeconds": reference_s,
               "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "timings": timings},
              open(os.path.join(d, "timings.json"), "w"))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "bench"):
        raise SystemExit(__doc__)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    (make if sys.argv[1] == "make" else bench)(sys.argv[2])


if __name__ == "__main__":
    main()
