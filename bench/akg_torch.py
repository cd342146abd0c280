#!/usr/bin/env python3
"""PyTorch reference for `npm run bench:akg`: the same architecture, weights and inputs as the
tfjs engine, with per-sample Jacobians from functorch `vmap(jacrev)`.

Usage: /usr/bin/python3 bench/akg_torch.py DIR
DIR holds (written by bench/akg.ts):
  spec.json     {"architecture": "cnn1d"|"transformer", "config": {...}, "n": int (samples in
                 x.bin), "selfN": int, "cross": int, "chunk": int,
                 "weights": [{"name", "shape", "offset"}]}
  weights.bin   float32 little-endian, tfjs layouts, at the offsets in spec.json
  x.bin         float32 [n, length, channels]
Self-K runs on the first selfN samples, the cross kernel between samples [0, cross) and
[cross, 2·cross). Writes DIR/torch.json (timings, threads, versions), DIR/k_torch64.bin (float64
self-K [selfN, V, V]) and DIR/k_torch32.bin (float32 self-K from the timed run).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from functorch import jacrev, make_functional, vmap


def load(d):
    spec = json.load(open(os.path.join(d, "spec.json")))
    raw = np.fromfile(os.path.join(d, "weights.bin"), dtype="<f4")
    weights = {}
    for w in spec["weights"]:
        size = int(np.prod(w["shape"])) if w["shape"] else 1
        weights[w["name"]] = raw[w["offset"] : w["offset"] + size].reshape(w["shape"])
    cfg = spec["config"]
    x = np.fromfile(os.path.join(d, "x.bin"), dtype="<f4").reshape(spec["n"], cfg["length"], cfg["channels"])
    return spec, weights, x


def conv_weight(w):
    """tfjs Conv1D kernel [k, in, out] -> torch Conv1d weight [out, in, k]."""
    return torch.tensor(np.ascontiguousarray(w.transpose(2, 1, 0)))


def linear_weight(w):
    """tfjs Dense kernel [in, out] -> torch Linear weight [out, in]."""
    return torch.tensor(np.ascontiguousarray(w.T))


def same_pad(k):
    total = k - 1
    return total // 2, total - total // 2


class Cnn1d(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg = cfg
        self.convs = torch.nn.ModuleList()
        for i, (f, k) in enumerate(zip(cfg["filters"], cfg["kernelSizes"])):
            c = torch.nn.Conv1d(w[f"conv{i + 1}/kernel"].shape[1], f, k)
            c.weight.data = conv_weight(w[f"conv{i + 1}/kernel"])
            c.bias.data = torch.tensor(w[f"conv{i + 1}/bias"])
            self.convs.append(c)
        self.head = torch.nn.Linear(cfg["filters"][-1], cfg["classes"])
        self.head.weight.data = linear_weight(w["head/kernel"])
        self.head.bias.data = torch.tensor(w["head/bias"])

    def forward(self, h):  # h [B, C, L], contiguous (a transposed view is 2x slower under vmap)
        for i, c in enumerate(self.convs):
            h = torch.relu(c(F.pad(h, same_pad(c.kernel_size[0]))))
            if self.cfg["pool"] > 1 and i < len(self.convs) - 1:
                h = F.max_pool1d(h, self.cfg["pool"])
        return self.head(h.mean(-1))


def sinusoidal(t, d):
    code = np.zeros((t, d), dtype=np.float32)
    for pos in range(t):
        for i in range(d):
            freq = math.pow(10000, -(2 * (i // 2)) / d)
            code[pos, i] = math.sin(pos * freq) if i % 2 == 0 else math.cos(pos * freq)
    return torch.tensor(code)


class Transformer(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg = cfg
        d, eps = cfg["dim"], 1e-3

        def ln(name):
            m = torch.nn.LayerNorm(d, eps=eps)
            m.weight.data = torch.tensor(w[f"{name}/gamma"])
            m.bias.data = torch.tensor(w[f"{name}/beta"])
            return m

        def lin(name):
            k = w[f"{name}/kernel"]
            m = torch.nn.Linear(k.shape[0], k.shape[1])
            m.weight.data = linear_weight(k)
            m.bias.data = torch.tensor(w[f"{name}/bias"])
            return m

        self.patch = torch.nn.Conv1d(cfg["channels"], d, cfg["patch"], stride=cfg["patch"])
        self.patch.weight.data = conv_weight(w["patch/kernel"])
        self.patch.bias.data = torch.tensor(w["patch/bias"])
        self.patch_norm = ln("patch_norm")
        self.cls = torch.nn.Parameter(torch.tensor(w["cls/token"]))
        self.blocks = torch.nn.ModuleList()
        for b in range(cfg["depth"]):
            p = f"block{b}"
            self.blocks.append(torch.nn.ModuleDict({
                "ln1": ln(f"{p}_ln1"), "qkv": lin(f"{p}_qkv"), "proj": lin(f"{p}_proj"),
                "ln2": ln(f"{p}_ln2"), "mlp1": lin(f"{p}_mlp1"), "mlp2": lin(f"{p}_mlp2"),
            }))
        self.head_norm = ln("head_norm")
        self.head = lin("head")
        # A plain attribute, not a buffer: make_functional takes parameters only.
        self.pos = sinusoidal(cfg["length"] // cfg["patch"] + 1, d)

    def forward(self, x):  # x [B, C, L], contiguous
        cfg = self.cfg
        h, d = cfg["heads"], cfg["dim"]
        dh = d // h
        z = self.patch(x).transpose(1, 2)  # [B, T, d]
        z = self.patch_norm(z)
        z = torch.cat([self.cls.expand(z.shape[0], 1, d), z], 1) + self.pos.to(z.dtype)
        B, T, _ = z.shape
        for blk in self.blocks:
            y = blk["qkv"](blk["ln1"](z))
            q, k, v = (t.reshape(B, T, h, dh).transpose(1, 2) for t in y.split(d, -1))
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), -1)
            o = (p @ v).transpose(1, 2).reshape(B, T, d)
            z = z + blk["proj"](o)
            z = z + blk["mlp2"](F.gelu(blk["mlp1"](blk["ln2"](z))))
        return self.head(self.head_norm(z[:, 0]))


def jacobians(fmodel, params, x, chunk):
    """Per-sample J [c, V, P] of each chunk of x, by vmap(jacrev)."""

    def one(p, xi):
        return fmodel(p, xi.unsqueeze(0)).squeeze(0)

    for i in range(0, x.shape[0], chunk):
        jac = vmap(jacrev(one), (None, 0))(params, x[i : i + chunk])
        yield torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jac], 2)


def self_k(fmodel, params, x, chunk):
    return torch.cat([torch.einsum("ncp,ndp->ncd", j, j) for j in jacobians(fmodel, params, x, chunk)], 0)


def jac_rows(fmodel, params, x, chunk):
    return torch.cat(list(jacobians(fmodel, params, x, chunk)), 0)  # [n, V, P]


def main():
    d = sys.argv[1]
    spec, w, x_np = load(d)
    cfg = spec["config"]
    arch = spec["architecture"]
    chunk = spec["chunk"]
    model = (Cnn1d if arch == "cnn1d" else Transformer)(cfg, w).eval()
    x_all = torch.tensor(np.ascontiguousarray(x_np.transpose(0, 2, 1)))  # [n, C, L]
    x = x_all[: spec.get("selfN", spec["n"])]

    # float64 reference K (accuracy), untimed.
    m64 = (Cnn1d if arch == "cnn1d" else Transformer)(cfg, w).double().eval()
    f64, p64 = make_functional(m64)
    k64 = self_k(f64, p64, x.double(), chunk)
    k64.detach().numpy().astype("<f8").tofile(os.path.join(d, "k_torch64.bin"))

    fm, params = make_functional(model)
    self_k(fm, params, x[:chunk], chunk)  # warm-up
    repeat = int(spec.get("repeat", 1))
    default_threads = torch.get_num_threads()
    timings = {}
    cpu_timings = {}
    for threads in sorted({default_threads, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        best = float("inf")
        best_cpu = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            c0 = time.process_time()
            k32 = self_k(fm, params, x, chunk)
            best_cpu = min(best_cpu, time.process_time() - c0)
            best = min(best, time.perf_counter() - t0)
        timings[threads] = best
        cpu_timings[threads] = best_cpu
    torch.set_num_threads(default_threads)
    self_s = timings[default_threads]
    k32.detach().numpy().astype("<f4").tofile(os.path.join(d, "k_torch32.bin"))

    ncross = spec["cross"]
    cross_timings = {}
    for threads in sorted(timings):
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        jo = jac_rows(fm, params, x_all[:ncross], chunk)
        ju = jac_rows(fm, params, x_all[ncross : 2 * ncross], chunk)
        V = jo.shape[1]
        kc = jo.reshape(ncross * V, -1) @ ju.reshape(ncross * V, -1).T
        kc = kc.reshape(ncross, V, ncross, V).permute(0, 2, 1, 3).contiguous()
        cross_timings[threads] = time.perf_counter() - t0
        del jo, ju, kc
    torch.set_num_threads(default_threads)
    cross_s = cross_timings[default_threads]

    json.dump({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in params),
        "selfK": {"n": int(x.shape[0]), "seconds": self_s, "samplesPerSecond": x.shape[0] / self_s},
        "selfKByThreads": {str(t): x.shape[0] / s for t, s in timings.items()},
        "selfKCpuByThreads": {str(t): x.shape[0] / s for t, s in cpu_timings.items()},
        "crossK": {"no": ncross, "nu": ncross, "seconds": cross_s, "pairsPerSecond": ncross * ncross / cross_s},
        "crossKByThreads": {str(t): ncross * ncross / s for t, s in cross_timings.items()},
    }, open(os.path.join(d, "torch.json"), "w"))


if __name__ == "__main__":
    main()
