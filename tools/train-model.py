#!/usr/bin/python3
"""Train the small Llama that ships with exo-node, on the texts of Debian's `fortunes`.

Run with Debian's Python (the torch and numpy are Debian's python3-torch and
python3-numpy):

    apt-get install -y --no-install-recommends fortunes python3-torch python3-numpy \
        libopenblas0-pthread      # optional: without it torch uses the slow reference BLAS
    nice /usr/bin/python3 tools/train-model.py --out-dir data/models

or `./bootstrap train-model [options...]`.  Training is not part of the test suite.

What it does, in order:

 1. reads the fortune texts from the files of the Debian package `fortunes`
    (strfile sources: entries separated by lines holding a single "%"), and records
    the package version and the files it used;
 2. trains a byte-fallback BPE tokenizer in the manner of sentencepiece and writes it
    in llama2.c's tokenizer.bin format (id 0 <unk>, 1 <s>, 2 </s>, 3..258 "<0x00>"..
    "<0xFF>", then the merges with score -rank, then the single characters);
    the training text is tokenized with exactly the algorithm of llama2.c's run.c
    (`encode`), so a C engine that follows run.c sees the distribution the model
    was trained on;
 3. trains a Llama (llama2.c's model.py architecture: RMSNorm, RoPE on interleaved
    pairs, grouped-query attention, SwiGLU, classifier tied to the embedding) with
    torch on the CPU for a bounded time, with fixed seeds;
 4. exports it in llama2.c's legacy float32 format and in its int8 "version 2"
    (Q8_0) format, laid out exactly as llama2.c's export.py does;
 5. reads the exported files back with numpy, checks the float32 forward pass against
    torch's, checks the Q8_0 file against the weights, and prints three greedy samples
    (with their token ids) computed by a numpy reference of run.c's forward pass.

The layouts are written down in data/models/README.md.
"""

import argparse
import hashlib
import heapq
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import time
from collections import Counter


def _threads_from_argv(argv, default="2"):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return default


# OpenBLAS (Debian's libopenblas0-pthread, when installed, is the libblas.so.3 that numpy
# and torch use) reads its thread count when it is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads_from_argv(sys.argv))
# On a machine shared with other work, OpenMP threads that spin while they wait for each
# other burn the CPU they wait for: 2 spinning threads trained 4-6x slower than 1 thread
# here; passive waiting makes 2 threads at least as fast as 1.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    sys.exit("train-model: needs torch: apt-get install python3-torch, and run with /usr/bin/python3")


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------
# corpus

def package_files(package, directory):
    """The fortune source files of `package` under `directory` (via dpkg), sorted."""
    try:
        out = subprocess.run(["dpkg-query", "-L", package], check=True,
                             capture_output=True, text=True).stdout
        paths = [p for p in out.splitlines() if p.startswith(directory.rstrip("/") + "/")]
    except (OSError, subprocess.CalledProcessError):
        paths = [os.path.join(directory, n) for n in os.listdir(directory)]
    files = []
    for p in sorted(set(paths)):
        if p.endswith(".dat") or os.path.islink(p) or not os.path.isfile(p):
            continue  # strfile indexes and the .u8 symlinks
        files.append(p)
    return files


def package_version(package):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


OVERSTRIKE = re.compile(r".\x08")                     # "_\bx" (underline), "x\bx" (bold)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")     # everything but \t and \n


def clean(text):
    text = OVERSTRIKE.sub("", text)
    text = CONTROL.sub("", text)
    lines = [l.rstrip() for l in text.split("\n")]
    return "\n".join(lines).strip("\n")


def read_fortunes(path):
    raw = open(path, "rb").read().decode("utf-8", errors="replace")
    docs, cur = [], []
    for line in raw.split("\n"):
        if line == "%":
            docs.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("\n".join(cur))
    return [d for d in (clean(d) for d in docs) if d.strip()]


# --------------------------------------------------------------------------------------
# tokenizer

BOS_STR, EOS_STR, UNK_STR = "\n<s>\n", "\n</s>\n", "<unk>"
CHUNK = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\n+|[ \t]+(?!\S)|[ \t]+")


class Tokenizer:
    """A llama2.c tokenizer: vocab (list of str) and scores; encode = run.c's encode."""

    def __init__(self, vocab, scores):
        assert vocab[0] == UNK_STR and vocab[1] == BOS_STR and vocab[2] == EOS_STR
        self.vocab, self.scores = list(vocab), list(scores)
        self.lookup = {}
        for i, t in enumerate(self.vocab):
            assert t not in self.lookup, f"duplicate token {t!r}"
            self.lookup[t] = i
        assert " " in self.lookup, "run.c's encode needs a ' ' token (the dummy prefix)"

    @property
    def size(self):
        return len(self.vocab)

    def _initial(self, text):
        ids = []
        if text:
            ids.append(self.lookup[" "])  # run.c: add_dummy_prefix
        for ch in text:  # one UTF-8 code point at a time, as run.c does
            tid = self.lookup.get(ch)
            if tid is not None:
                ids.append(tid)
            else:
                ids.extend(b + 3 for b in ch.encode("utf-8"))  # byte fallback
        return ids

    def encode(self, text, bos=True, eos=False):
        """run.c's encode(): merge the adjacent pair with the best score, leftmost
        first, until no pair merges; done here with a heap, same result."""
        toks = self._initial(text)
        n = len(toks)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                m = self.lookup.get(self.vocab[toks[i]] + self.vocab[toks[j]])
                if m is not None:
                    heapq.heappush(heap, (-self.scores[m], i, toks[i], toks[j], m))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, a, b, m = heapq.heappop(heap)
            if not alive[i] or toks[i] != a:
                continue
            j = nxt[i]
            if j >= n or toks[j] != b:
                continue
            toks[i] = m
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        out = [toks[i] for i in range(n) if alive[i]]
        return ([1] if bos else []) + out + ([2] if eos else [])

    def encode_reference(self, text, bos=True, eos=False):
        """A literal transcription of run.c's loop (quadratic), to test encode()."""
        toks = self._initial(text)
        while True:
            best, best_id, best_idx = -1e10, -1, -1
            for i in range(len(toks) - 1):
                m = self.lookup.get(self.vocab[toks[i]] + self.vocab[toks[i + 1]])
                if m is not None and self.scores[m] > best:
                    best, best_id, best_idx = self.scores[m], m, i
            if best_idx == -1:
                break
            toks[best_idx:best_idx + 2] = [best_id]
        return ([1] if bos else []) + toks + ([2] if eos else [])

    def decode_piece(self, prev, tok):
        """run.c's decode(): bytes of one token."""
        piece = self.vocab[tok].encode("utf-8")
        if prev == 1 and piece[:1] == b" ":
            piece = piece[1:]
        m = re.fullmatch(rb"<0x([0-9A-F]{2})>", piece)
        if m:
            return bytes([int(m.group(1), 16)])
        return piece

    def decode(self, ids):
        out, prev = b"", ids[0] if ids else 0
        for t in ids[1:]:
            out += self.decode_piece(prev, t)
            prev = t
        return out.decode("utf-8", errors="replace")

    def write(self, path):
        data = [t.encode("utf-8") for t in self.vocab]
        with open(path, "wb") as f:
            f.write(struct.pack("<i", max(len(b) for b in data)))
            for b, s in zip(data, self.scores):
                f.write(struct.pack("<fi", s, len(b)))
                f.write(b)

    @staticmethod
    def read(path, vocab_size):
        raw = open(path, "rb").read()
        (maxlen,) = struct.unpack_from("<i", raw, 0)
        off, vocab, scores = 4, [], []
        for _ in range(vocab_size):
            s, n = struct.unpack_from("<fi", raw, off)
            off += 8
            b = raw[off:off + n]
            off += n
            assert n <= maxlen
            vocab.append(b.decode("utf-8"))
            scores.append(s)
        assert off == len(raw), f"{path}: {len(raw) - off} trailing bytes"
        return Tokenizer(vocab, scores)


def train_tokenizer(docs, vocab_size, min_char_count):
    """BPE over characters (sentencepiece-style, with byte fallback for the rest)."""
    chars = Counter()
    for d in docs:
        chars.update(d)
    alphabet = sorted((c for c, k in chars.items()
                       if k >= min_char_count and (c in "\n\t" or ord(c) >= 32) and c != "\x7f"),
                      key=lambda c: (-chars[c], c))
    assert " " in alphabet
    n_merges = vocab_size - 259 - len(alphabet)
    assert n_merges > 0, "vocab too small for the alphabet"
    inalpha = set(alphabet)

    # words: the pre-tokenization chunks, split again at characters outside the alphabet
    words = Counter()
    for d in docs:
        for chunk in CHUNK.findall(" " + d):
            part = []
            for c in chunk:
                if c in inalpha:
                    part.append(c)
                elif part:
                    words[tuple(part)] += 1
                    part = []
            if part:
                words[tuple(part)] += 1
    wlist = [list(w) for w in words]
    wfreq = [words[w] for w in words]

    # pair -> count, and pair -> words holding it
    pairs = Counter()
    where = {}
    for wi, w in enumerate(wlist):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += wfreq[wi]
            where.setdefault((a, b), set()).add(wi)

    merges, known = [], set(alphabet)
    while len(merges) < n_merges and pairs:
        (a, b), cnt = max(pairs.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0][0] + kv[0][1]]))
        if cnt < 2:
            break
        ab = a + b
        if ab not in known:
            merges.append(ab)
            known.add(ab)
        for wi in sorted(where.pop((a, b), ())):
            w, f = wlist[wi], wfreq[wi]
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] -= f
                if pairs[(x, y)] <= 0:
                    del pairs[(x, y)]
            i, nw = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    nw.append(ab)
                    i += 2
                else:
                    nw.append(w[i])
                    i += 1
            wlist[wi] = nw
            for x, y in zip(nw, nw[1:]):
                pairs[(x, y)] += f
                where.setdefault((x, y), set()).add(wi)
        pairs.pop((a, b), None)

    vocab = [UNK_STR, BOS_STR, EOS_STR] + [f"<0x{i:02X}>" for i in range(256)]
    scores = [0.0] * 259
    for r, m in enumerate(merges):
        vocab.append(m)
        scores.append(float(-r))
    for j, c in enumerate(alphabet):
        vocab.append(c)
        scores.append(float(-(len(merges) + j)))
    assert len(vocab) <= vocab_size
    return Tokenizer(vocab, scores), alphabet, merges


# --------------------------------------------------------------------------------------
# model (llama2.c's model.py, without dropout)

def precompute_freqs(head_dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.cos(freqs), torch.sin(freqs)


def apply_rotary(x, cos, sin):
    # x: (B, T, H, hd); rotate the interleaved pairs (x[2i], x[2i+1]), as run.c does
    xr, xi = x.float().reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
    cos = cos.view(1, cos.shape[0], 1, cos.shape[1])
    sin = sin.view(1, sin.shape[0], 1, sin.shape[1])
    outr = xr * cos - xi * sin
    outi = xr * sin + xi * cos
    return torch.stack([outr, outi], dim=-1).flatten(3).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.n_heads, self.n_kv_heads = a.n_heads, a.n_kv_heads
        self.head_dim = a.dim // a.n_heads
        self.n_rep = self.n_heads // self.n_kv_heads
        self.wq = nn.Linear(a.dim, a.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(a.dim, a.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(a.dim, a.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(a.n_heads * self.head_dim, a.dim, bias=False)
        mask = torch.full((1, 1, a.seq_len, a.seq_len), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # query head h uses kv head h // n_rep (run.c: h / kv_mul)
        k = k.repeat_interleave(self.n_rep, dim=2)
        v = v.repeat_interleave(self.n_rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        att = (q @ k.transpose(2, 3)) / math.sqrt(self.head_dim) + self.mask[:, :, :T, :T]
        att = F.softmax(att.float(), dim=-1).type_as(q)
        out = (att @ v).transpose(1, 2).contiguous().view(B, T, -1)
        return self.wo(out)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.attention = Attention(a)
        self.feed_forward = FeedForward(a.dim, a.hidden_dim)
        self.attention_norm = RMSNorm(a.dim, a.norm_eps)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)

    def forward(self, x, cos, sin):
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.tok_embeddings = nn.Embedding(a.vocab_size, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.n_layers))
        self.norm = RMSNorm(a.dim, a.norm_eps)
        self.output = nn.Linear(a.dim, a.vocab_size, bias=False)
        self.tok_embeddings.weight = self.output.weight  # tied classifier
        cos, sin = precompute_freqs(a.dim // a.n_heads, a.seq_len)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)
        self.apply(self._init)
        for n, p in self.named_parameters():  # llama2.c's scaled init of residual projections
            if n.endswith("w3.weight") or n.endswith("wo.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * a.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        cos, sin = self.freqs_cos[:T], self.freqs_sin[:T]
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.output(self.norm(h))


# --------------------------------------------------------------------------------------
# export (llama2.c export.py: legacy_export and version2_export)

def f32(t):
    return t.detach().cpu().contiguous().view(-1).to(torch.float32).numpy().astype("<f4").tobytes()


def export_legacy(model, path):
    a, L = model.a, model.layers
    shared = torch.equal(model.tok_embeddings.weight, model.output.weight)
    vocab = a.vocab_size if shared else -a.vocab_size
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", a.dim, L[0].feed_forward.w1.weight.shape[0], a.n_layers,
                            a.n_heads, a.n_kv_heads, vocab, a.seq_len))
        f.write(f32(model.tok_embeddings.weight))
        for name in ("attention_norm", "attention.wq", "attention.wk", "attention.wv",
                     "attention.wo", "ffn_norm", "feed_forward.w1", "feed_forward.w2",
                     "feed_forward.w3"):
            for layer in L:
                mod = layer
                for part in name.split("."):
                    mod = getattr(mod, part)
                f.write(f32(mod.weight))
        f.write(f32(model.norm.weight))
        f.write(f32(model.freqs_cos[:a.seq_len]))
        f.write(f32(model.freqs_sin[:a.seq_len]))
        if not shared:
            f.write(f32(model.output.weight))


def quantize_q80(w, group_size):
    """llama2.c export.py quantize_q80: symmetric int8 per group, scale = max|w| / 127."""
    w = w.detach().float().reshape(-1, group_size)
    wmax = torch.abs(w).max(dim=1).values
    scale = wmax / 127.0
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)  # an all-zero group
    q = torch.round(w / safe[:, None]).to(torch.int8)
    err = torch.abs(q.float() * scale[:, None] - w).max().item()
    return q, scale, err


def export_q8(model, path, group_size):
    a, L = model.a, model.layers
    while a.dim % group_size != 0:
        group_size //= 2
        log(f"BACKOFF: group size {group_size}")
    weights = [model.tok_embeddings.weight,
               *[l.attention.wq.weight for l in L], *[l.attention.wk.weight for l in L],
               *[l.attention.wv.weight for l in L], *[l.attention.wo.weight for l in L],
               *[l.feed_forward.w1.weight for l in L], *[l.feed_forward.w2.weight for l in L],
               *[l.feed_forward.w3.weight for l in L]]
    shared = torch.equal(model.tok_embeddings.weight, model.output.weight)
    if not shared:
        weights.append(model.output.weight)
    for w in weights:
        assert w.numel() % group_size == 0
    maxerr = 0.0
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 0x616B3432))          # "ak42"
        f.write(struct.pack("<i", 2))                   # version
        f.write(struct.pack("<7i", a.dim, L[0].feed_forward.w1.weight.shape[0], a.n_layers,
                            a.n_heads, a.n_kv_heads, a.vocab_size, a.seq_len))
        f.write(struct.pack("<B", int(shared)))         # offset 36
        f.write(struct.pack("<i", group_size))          # offset 37 (unaligned, as export.py)
        f.write(b"\0" * (256 - f.tell()))
        for l in L:
            f.write(f32(l.attention_norm.weight))
        for l in L:
            f.write(f32(l.ffn_norm.weight))
        f.write(f32(model.norm.weight))
        for w in weights:
            q, s, err = quantize_q80(w, group_size)
            f.write(q.numpy().tobytes())
            f.write(f32(s))
            maxerr = max(maxerr, err)
    return group_size, maxerr


# --------------------------------------------------------------------------------------
# numpy reference (run.c's forward), reading the exported files back

class NpModel:
    def __init__(self, cfg, w):
        self.dim, self.hidden, self.L, self.H, self.KV, self.V, self.S = cfg
        self.hd = self.dim // self.H
        self.w = w

    @staticmethod
    def read_legacy(path):
        raw = open(path, "rb").read()
        dim, hidden, L, H, KV, V, S = struct.unpack_from("<7i", raw, 0)
        shared, V = V > 0, abs(V)
        hd = dim // H
        off = 28
        w = {}

        def take(name, shape):
            nonlocal off
            n = int(np.prod(shape))
            assert off + 4 * n <= len(raw), f"{path}: truncated at {name}"
            w[name] = np.frombuffer(raw, "<f4", n, off).reshape(shape).astype(np.float32)
            off += 4 * n

        take("emb", (V, dim))
        take("att_norm", (L, dim))
        take("wq", (L, H * hd, dim))
        take("wk", (L, KV * hd, dim))
        take("wv", (L, KV * hd, dim))
        take("wo", (L, dim, H * hd))
        take("ffn_norm", (L, dim))
        take("w1", (L, hidden, dim))
        take("w2", (L, dim, hidden))
        take("w3", (L, hidden, dim))
        take("norm", (dim,))
        take("freq_cos", (S, hd // 2))
        take("freq_sin", (S, hd // 2))
        if shared:
            w["out"] = w["emb"]
        else:
            take("out", (V, dim))
        assert off == len(raw), f"{path}: {len(raw) - off} trailing bytes"
        return NpModel((dim, hidden, L, H, KV, V, S), w)

    @staticmethod
    def read_q8(path):
        raw = open(path, "rb").read()
        magic, version = struct.unpack_from("<Ii", raw, 0)
        assert magic == 0x616B3432 and version == 2
        dim, hidden, L, H, KV, V, S = struct.unpack_from("<7i", raw, 8)
        shared = raw[36]
        (gs,) = struct.unpack_from("<i", raw, 37)
        assert raw[41:256] == b"\0" * (256 - 41)
        hd = dim // H
        off = 256
        w = {}

        def take_f32(name, shape):
            nonlocal off
            n = int(np.prod(shape))
            w[name] = np.frombuffer(raw, "<f4", n, off).reshape(shape).astype(np.float32)
            off += 4 * n

        def take_q(name, shape):
            # runq.c init_quantized_tensors: per tensor (per layer), its int8 values
            # then its float32 scales
            nonlocal off
            per = int(np.prod(shape[1:]))
            parts = []
            for _ in range(shape[0]):
                q = np.frombuffer(raw, np.int8, per, off).astype(np.float32)
                off += per
                s = np.frombuffer(raw, "<f4", per // gs, off).astype(np.float32)
                off += 4 * (per // gs)
                parts.append((q.reshape(-1, gs) * s[:, None]).reshape(shape[1:]))
            w[name] = np.stack(parts).astype(np.float32)

        take_f32("att_norm", (L, dim))
        take_f32("ffn_norm", (L, dim))
        take_f32("norm", (dim,))
        take_q("emb", (1, V, dim))
        w["emb"] = w["emb"][0]
        take_q("wq", (L, H * hd, dim))
        take_q("wk", (L, KV * hd, dim))
        take_q("wv", (L, KV * hd, dim))
        take_q("wo", (L, dim, H * hd))
        take_q("w1", (L, hidden, dim))
        take_q("w2", (L, dim, hidden))
        take_q("w3", (L, hidden, dim))
        if shared:
            w["out"] = w["emb"]
        else:
            take_q("out", (1, V, dim))
            w["out"] = w["out"][0]
        assert off == len(raw), f"{path}: {len(raw) - off} trailing bytes"
        return NpModel((dim, hidden, L, H, KV, V, S), w), gs, bool(shared)

    def generate_logits(self, tokens):
        """run.c forward() one token at a time with a KV cache; yields logits."""
        w, hd = self.w, self.hd
        kc = np.zeros((self.L, self.S, self.KV * hd), np.float32)
        vc = np.zeros((self.L, self.S, self.KV * hd), np.float32)
        kv_mul = self.H // self.KV
        i = np.arange(0, hd, 2)
        freq = (1.0 / np.power(10000.0, i / hd)).astype(np.float32)

        def rms(x, g):
            return (g * (x / np.sqrt(np.mean(x * x) + 1e-5))).astype(np.float32)

        def rope(v, pos, n):
            v = v.reshape(n, hd // 2, 2)
            c, s = np.cos(pos * freq), np.sin(pos * freq)
            r = np.stack([v[..., 0] * c - v[..., 1] * s, v[..., 0] * s + v[..., 1] * c], -1)
            return r.reshape(-1).astype(np.float32)

        pos = 0
        while True:
            tok = tokens[pos]
            x = w["emb"][tok].copy()
            for l in range(self.L):
                xb = rms(x, w["att_norm"][l])
                q = rope(w["wq"][l] @ xb, pos, self.H)
                kc[l, pos] = rope(w["wk"][l] @ xb, pos, self.KV)
                vc[l, pos] = w["wv"][l] @ xb
                att_out = np.zeros(self.H * hd, np.float32)
                for h in range(self.H):
                    kvh = h // kv_mul
                    qh = q[h * hd:(h + 1) * hd]
                    k = kc[l, :pos + 1, kvh * hd:(kvh + 1) * hd]
                    sc = (k @ qh) / np.sqrt(hd)
                    sc = np.exp(sc - sc.max())
                    sc /= sc.sum()
                    att_out[h * hd:(h + 1) * hd] = sc @ vc[l, :pos + 1, kvh * hd:(kvh + 1) * hd]
                x = x + w["wo"][l] @ att_out
                xb = rms(x, w["ffn_norm"][l])
                h1 = w["w1"][l] @ xb
                h3 = w["w3"][l] @ xb
                x = x + w["w2"][l] @ ((h1 / (1.0 + np.exp(-h1))) * h3)
            logits = w["out"] @ rms(x, w["norm"])
            tokens = yield logits
            pos += 1

    def greedy(self, prompt_ids, max_new):
        """Greedy decoding as run.c at temperature 0; stops when BOS (1) is predicted."""
        toks = list(prompt_ids)
        gen = self.generate_logits(toks)
        logits = next(gen)
        out = []
        pos = 0
        while pos + 1 < self.S:
            if pos + 1 < len(toks):
                nxt = toks[pos + 1]
            else:
                nxt = int(np.argmax(logits))
                if nxt == 1 or len(out) >= max_new:
                    break
                toks.append(nxt)
                out.append(nxt)
            pos += 1
            logits = gen.send(toks)
        return out


# --------------------------------------------------------------------------------------
# training

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "build", "model"),
                    help="where the .bin files go (default: build/model; the shipped "
                         "model is in data/models)")
    ap.add_argument("--package", default="fortunes")
    ap.add_argument("--fortunes-dir", default="/usr/share/games/fortunes")
    ap.add_argument("--exclude", default="ascii-art",
                    help="comma-separated fortune files to leave out (pictures, not text)")
    ap.add_argument("--name", default="fortunes", help="file name stem")
    ap.add_argument("--minutes", type=float, default=20.0,
                    help="training time budget (unless --steps); the lr decay starts when "
                         "(1 - decay-frac) of it is spent")
    ap.add_argument("--steps", type=int, default=0,
                    help="train exactly this many steps (reproduces a run; 0: from --minutes)")
    ap.add_argument("--decay-steps", type=int, default=0,
                    help="with --steps: steps of the final lr decay (0: --decay-frac of them)")
    ap.add_argument("--decay-frac", type=float, default=0.2,
                    help="the share of the run spent decaying the learning rate")
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--min-char-count", type=int, default=10)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--n-kv-heads", type=int, default=2)
    ap.add_argument("--hidden-dim", type=int, default=384)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-batches", type=int, default=10)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new", type=int, default=80, help="tokens per sample")
    ap.add_argument("--prompts", default="|Love is|The computer",
                    help="'|'-separated prompts of the greedy samples ('' = BOS alone)")
    args = ap.parse_args()
    if args.minutes <= 0 and args.steps <= 0:
        ap.error("need --minutes > 0 or --steps > 0")

    t_start = time.time()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)

    # ---- corpus
    version = package_version(args.package)
    excluded = {e for e in args.exclude.split(",") if e}
    files = [p for p in package_files(args.package, args.fortunes_dir)
             if os.path.basename(p) not in excluded]
    if not files:
        sys.exit(f"train-model: no fortune files in {args.fortunes_dir} "
                 f"(apt-get install {args.package})")
    docs, per_file, corpus_hash = [], [], hashlib.sha256()
    for p in files:
        d = read_fortunes(p)
        corpus_hash.update(open(p, "rb").read())
        per_file.append((os.path.basename(p), len(d)))
        docs.extend(d)
    nchars = sum(len(d) for d in docs)
    log(f"corpus: package {args.package} {version}, {len(files)} files, {len(docs)} fortunes, "
        f"{nchars} characters, sha256 of the source files (concatenated) {corpus_hash.hexdigest()}")
    log("files: " + " ".join(f"{n}({k})" for n, k in per_file))
    log(f"excluded: {', '.join(sorted(excluded)) or '-'}")

    # ---- tokenizer
    t0 = time.time()
    tok, alphabet, merges = train_tokenizer(docs, args.vocab_size, args.min_char_count)
    if tok.size < args.vocab_size:
        log(f"tokenizer: only {tok.size} tokens (ran out of pairs)")
    args.vocab_size = tok.size
    log(f"tokenizer: {tok.size} tokens = 3 special + 256 bytes + {len(merges)} merges + "
        f"{len(alphabet)} characters ({time.time() - t0:.1f}s)")
    log("first merges: " + " ".join(repr(m) for m in merges[:24]))
    tok_path = os.path.join(args.out_dir, f"tokenizer-{args.name}.bin")
    tok.write(tok_path)
    back = Tokenizer.read(tok_path, tok.size)
    assert back.vocab == tok.vocab and back.scores == tok.scores
    for d in docs[:300:7]:  # the heap encoder is run.c's loop
        assert tok.encode(d) == tok.encode_reference(d), d
        assert tok.decode(tok.encode(d)) == d, d

    # ---- data: a document is BOS + encode(text), as llama2.c's pretokenization
    order = list(range(len(docs)))
    random.Random(args.seed).shuffle(order)
    n_val = max(1, int(len(docs) * args.val_fraction))
    split = {"val": order[:n_val], "train": order[n_val:]}
    t0 = time.time()
    streams = {}
    for k, idx in split.items():
        ids = []
        for i in idx:
            ids.extend(tok.encode(docs[i], bos=True))
        streams[k] = torch.tensor(ids, dtype=torch.long)
    ntrain = len(streams["train"])
    log(f"data: train {ntrain} tokens ({len(split['train'])} fortunes), val "
        f"{len(streams['val'])} tokens ({n_val} fortunes), "
        f"{nchars / (ntrain + len(streams['val'])):.2f} chars/token ({time.time() - t0:.1f}s)")

    gens = {"train": torch.Generator().manual_seed(args.seed + 1)}

    def batch(split_name, gen):
        data = streams[split_name]
        ix = torch.randint(len(data) - args.seq_len - 1, (args.batch_size,), generator=gen)
        x = torch.stack([data[i:i + args.seq_len] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + args.seq_len] for i in ix])
        return x, y

    # ---- model
    model = Transformer(args)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"model: dim {args.dim}, hidden {args.hidden_dim}, {args.n_layers} layers, "
        f"{args.n_heads} heads, {args.n_kv_heads} kv heads, vocab {args.vocab_size}, "
        f"seq {args.seq_len}: {nparams} parameters (classifier tied)")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {}
        for k in ("train", "val"):
            g = torch.Generator().manual_seed(args.seed + 2)
            losses = []
            for _ in range(args.eval_batches):
                x, y = batch(k, g)
                losses.append(F.cross_entropy(model(x).view(-1, args.vocab_size),
                                              y.view(-1)).item())
            out[k] = sum(losses) / len(losses)
        model.train()
        return out

    # Schedule: linear warmup, constant lr, then a cosine decay to min_lr over the last
    # `decay` steps ("warmup-stable-decay").  With --steps the whole schedule is fixed.
    # With --minutes the decay starts when (1 - decay_frac) of the time is spent, and
    # lasts decay_frac of the steps; the run prints the --steps/--decay-steps that
    # reproduce it.
    if args.steps > 0:
        total = args.steps
        decay = args.decay_steps or max(1, round(args.steps * args.decay_frac))
    else:
        total, decay = None, None
    budget = args.minutes * 60.0 * 0.95  # room for the evaluations

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        if total is None or step < total - decay:
            return args.lr
        r = min(1.0, (step - (total - decay) + 1) / decay)
        return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (args.lr - args.min_lr)

    log(f"training: batch {args.batch_size} x {args.seq_len} tokens, AdamW lr {args.lr} "
        f"(warmup {args.warmup}, constant, cosine to {args.min_lr} over the last "
        f"{decay if decay else f'{args.decay_frac:.0%} of the'} steps), wd {args.weight_decay}, "
        f"clip {args.grad_clip}, seed {args.seed}, {args.threads} threads")
    t_train = time.time()
    c_train = time.process_time()
    recent, step, eval_time = [], 0, 0.0
    history = []
    while total is None or step < total:
        if (total is None and step >= args.warmup
                and time.time() - t_train >= (1.0 - args.decay_frac) * budget):
            decay = max(1, round(step * args.decay_frac / (1.0 - args.decay_frac)))
            total = step + decay
            log(f"  decay starts at step {step}: {total} steps in all "
                f"(rerun with --steps {total} --decay-steps {decay} to reproduce this run)")
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch("train", gens["train"])
        loss = F.cross_entropy(model(x).view(-1, args.vocab_size), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        recent.append(loss.item())
        recent = recent[-50:]
        step += 1
        if step % 50 == 0:
            el = time.time() - t_train
            log(f"  step {step}/{total or '?'}  loss {sum(recent) / len(recent):.4f}  "
                f"lr {lr:.2e}  {el / 60:.1f} min  "
                f"{step * args.batch_size * args.seq_len / max(el - eval_time, 1e-9):.0f} tok/s")
        if step % args.eval_every == 0 or step == total:
            te = time.time()
            ev = evaluate()
            eval_time += time.time() - te
            history.append((step, ev["train"], ev["val"]))
            log(f"  eval step {step}: train {ev['train']:.4f}  val {ev['val']:.4f}")
        if args.steps <= 0 and time.time() - t_train > args.minutes * 60.0 * 1.5:
            log(f"  stopping at step {step}: 1.5x over the time budget (the machine got slower)")
            break
    train_minutes = (time.time() - t_train) / 60.0
    cpu_minutes = (time.process_time() - c_train) / 60.0
    final = evaluate()
    log(f"trained {step} steps ({step * args.batch_size * args.seq_len} tokens, "
        f"{step * args.batch_size * args.seq_len / ntrain:.2f} epochs) in {train_minutes:.1f} min "
        f"({cpu_minutes:.1f} min of CPU); "
        f"final loss: train {final['train']:.4f}, val {final['val']:.4f} "
        f"(last 50 steps {sum(recent) / len(recent):.4f})")

    # ---- export
    model.eval()
    fp_path = os.path.join(args.out_dir, f"exo-{args.name}.bin")
    q8_path = os.path.join(args.out_dir, f"exo-{args.name}-q8.bin")
    export_legacy(model, fp_path)
    gs, qerr = export_q8(model, q8_path, args.group_size)
    log(f"exported {fp_path}, {q8_path} (Q8_0 group size {gs}, max abs quantization error "
        f"{qerr:.5f}), {tok_path}")

    # ---- read back and check
    npm = NpModel.read_legacy(fp_path)
    assert np.allclose(npm.w["freq_cos"], model.freqs_cos.numpy(), atol=1e-6)
    probe_ids = tok.encode(docs[split["val"][0]])[:40]
    gen = npm.generate_logits(probe_ids)
    np_logits = [next(gen)] + [gen.send(probe_ids) for _ in range(len(probe_ids) - 1)]
    with torch.no_grad():
        t_logits = model(torch.tensor([probe_ids]))[0].numpy()
    diff = float(np.max(np.abs(np.stack(np_logits) - t_logits)))
    log(f"check: numpy forward of {os.path.basename(fp_path)} vs torch, {len(probe_ids)} "
        f"positions: max |logit difference| {diff:.2e}")
    assert diff < 1e-3, "the float32 export does not reproduce the model"
    q8m, qgs, qshared = NpModel.read_q8(q8_path)
    qd = max(float(np.max(np.abs(q8m.w[k] - npm.w[k]))) for k in
             ("emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"))
    assert all(np.array_equal(q8m.w[k], npm.w[k]) for k in ("att_norm", "ffn_norm", "norm"))
    assert qd <= qerr * 1.001 + 1e-7, "the Q8_0 file does not hold the quantized weights"
    log(f"check: {os.path.basename(q8_path)} read back: group size {qgs}, shared classifier "
        f"{qshared}, max |dequantized - float32| {qd:.5f}")

    samples = []
    for prompt in args.prompts.split("|"):
        pids = tok.encode(prompt, bos=True)
        out = npm.greedy(pids, args.max_new)
        outq = q8m.greedy(pids, args.max_new)
        text = tok.decode(pids + out)
        samples.append({"prompt": prompt, "prompt_ids": pids, "ids": out, "text": text,
                        "q8_weights_same_ids": out == outq})
        log(f"\nsample (greedy, numpy on {os.path.basename(fp_path)}), prompt {prompt!r}:")
        log(f"  prompt ids {pids}")
        log(f"  generated ids {out}" + (" (then BOS)" if len(out) < args.max_new else ""))
        log(f"  dequantized Q8_0 weights give the same ids: {out == outq}")
        log("  text: " + json.dumps(text))
        log("-----\n" + text + "\n-----")

    summary = {
        "package": args.package, "package_version": version,
        "files": [n for n, _ in per_file], "excluded": sorted(excluded),
        "fortunes": len(docs), "characters": nchars,
        "corpus_sha256": corpus_hash.hexdigest(),
        "vocab_size": tok.size, "merges": len(merges), "alphabet": len(alphabet),
        "train_tokens": ntrain, "val_tokens": len(streams["val"]),
        "params": nparams, "steps": step, "decay_steps": decay, "train_minutes": round(train_minutes, 1),
        "train_cpu_minutes": round(cpu_minutes, 1),
        "final_train_loss": round(final["train"], 4), "final_val_loss": round(final["val"], 4),
        "eval_history": history, "q8_group_size": gs,
        "args": {k: v for k, v in vars(args).items()},
        "files_out": {os.path.basename(p): {"bytes": os.path.getsize(p),
                                            "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
                      for p in (fp_path, q8_path, tok_path)},
        "samples": samples, "total_minutes": round((time.time() - t_start) / 60.0, 1),
    }
    log("\nsummary: " + json.dumps(summary))


if __name__ == "__main__":
    main()
