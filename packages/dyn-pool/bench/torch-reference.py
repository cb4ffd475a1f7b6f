"""An independent PyTorch reimplementation of dyn-pool's miniature English runs (issue #9).

Same model as `HourglassLM` with rotary positions and post-LN blocks (vanilla, fixed and whitespace pooling
only), the same data handling (character vocabulary of the training text, random windows, validation BPC on the
first N characters in consecutive windows) and the same recipe (Adam (0.9, 0.999), linear warm-up then cosine to
0.1 of the peak, gradient-norm clip). Written from the README and the paper, not from the TypeScript: it answers
"does the TypeScript engine learn as fast as PyTorch does with this recipe?" — if both reach the same BPC at
the same step, the slow learning and the gap to vanilla are properties of the recipe and the model size, not
a defect of the engine.

Run (PyTorch 1.13, one thread):
  python3 bench/torch-reference.py --train ../../data/text/en-slice/train.txt \
      --valid ../../data/text/en-slice/valid.txt -b none --steps 300 --eval-every 50 --seed 0
Prints one JSON object per evaluation and a final one. With `--load-checkpoint run.ckpt` it trains nothing:
it loads a dyn-pool checkpoint (vocabulary, configuration and weights, by the same state-dict names) and prints
the validation BPC of those weights computed here, to compare with `dyn-pool eval` / the run's `validBpc`
(REPRODUCTION.md: they agree to seven digits).
"""

import argparse
import json
import math
import struct
import time

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F


def rope(x):
    """Rotate-half RoPE (GPT-NeoX convention), base 10000, positions 0..T-1; x [B, H, T, d]."""
    T, d = x.shape[-2], x.shape[-1]
    half = d // 2
    inv = 10000.0 ** (-torch.arange(0, half, dtype=torch.float64) / half)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1).float()
    sin = torch.cat([ang.sin(), ang.sin()], -1).float()
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


class Block(nn.Module):
    def __init__(self, d, h, dff):
        super().__init__()
        self.h = h
        # state-dict names as dyn-pool's (pre.0.attn.q_proj.weight, ...), so its checkpoints load
        self.attn = nn.ModuleDict({n: nn.Linear(d, d) for n in ('q_proj', 'k_proj', 'v_proj', 'o_proj')})
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, dff), nn.Linear(dff, d)

    def forward(self, x):
        B, T, d = x.shape
        sp = lambda t: t.view(B, T, self.h, d // self.h).transpose(1, 2)
        a = self.attn
        q, k, v = rope(sp(a['q_proj'](x))), rope(sp(a['k_proj'](x))), sp(a['v_proj'](x))
        s = q @ k.transpose(-1, -2) / math.sqrt(d // self.h)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)
        h = self.norm1(x + self.attn['o_proj'](o))  # post-LN, as the paper
        return self.norm2(h + self.fc2(F.gelu(self.fc1(h))))


class Hourglass(nn.Module):
    def __init__(self, V, d, h, layers, boundary, space_ids, sf, emb_scale):
        super().__init__()
        self.boundary, self.space_ids, self.sf = boundary, space_ids, sf
        self.embed = nn.Embedding(V, d)
        with torch.no_grad():
            self.embed.weight.mul_(emb_scale)
        mk = lambda n: nn.ModuleList(Block(d, h, 4 * d) for _ in range(n))
        self.pre, self.short, self.post = mk(layers[0]), mk(layers[1]), mk(layers[2])
        if boundary != 'none':
            self.null_group = nn.Parameter(torch.randn(d))
            self.down_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, V)

    def forward(self, ids):
        x = self.embed(ids)
        for b in self.pre:
            x = b(x)
        if self.boundary == 'none':
            for b in self.short:
                x = b(x)
        else:
            B, T, d = x.shape
            if self.boundary == 'whitespace':
                bnd = torch.zeros(B, T)
                for i in self.space_ids:
                    bnd += (ids == i).float()
            else:
                bnd = (torch.arange(T) % self.sf == 0).float().expand(B, T)
            S = int(bnd.sum(1).max().item())
            g = (bnd.cumsum(1) - bnd).long()  # group of token t: boundaries strictly before t
            m = bnd.cumsum(1).long()  # row of [null; groups] that token t reads
            onehot = (g[:, :, None] == torch.arange(S)[None, None, :]).float()  # [B, T, S]
            pooled = onehot.transpose(1, 2) @ x / (onehot.sum(1)[:, :, None] + 1e-9)
            s = torch.cat([self.null_group.expand(B, 1, d), pooled], 1)
            s = self.down_norm(s)
            for b in self.short:
                s = b(s)
            x = x + torch.gather(s, 1, m[:, :, None].expand(B, T, d))
        for b in self.post:
            x = b(x)
        return self.head(x)


def read_checkpoint(path):
    """dyn-pool's checkpoint (safetensors: 8-byte header length, JSON header, raw little-endian tensors)."""
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8 : 8 + n])
    meta = json.loads(head.pop('__metadata__')['tessera.checkpoint'])
    state = {}
    for k, v in head.items():
        if not k.startswith('model.'):
            continue
        assert v['dtype'] == 'F32', (k, v['dtype'])
        lo, hi = v['data_offsets']
        state[k[len('model.') :]] = torch.from_numpy(np.frombuffer(b[8 + n + lo : 8 + n + hi], dtype='<f4').copy()).view(v['shape'])
    return meta['config'], state


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--train', required=True)
    p.add_argument('--valid', required=True)
    p.add_argument('-b', '--boundary', default='none', choices=['none', 'whitespace', 'fixed'])
    p.add_argument('--sf', type=int, default=2)
    p.add_argument('--d-model', type=int, default=64)
    p.add_argument('--heads', type=int, default=4)
    p.add_argument('--layers', default='1,2,1')
    p.add_argument('--seq-len', type=int, default=128)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--steps', type=int, default=300)
    p.add_argument('--warmup', type=int, default=30)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--clip', type=float, default=0.25)
    p.add_argument('--beta2', type=float, default=0.999)
    p.add_argument('--emb-scale', type=float, default=0.02)
    p.add_argument('--eval-every', type=int, default=0)
    p.add_argument('--eval-tokens', type=int, default=16384)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--load-checkpoint', help="dyn-pool checkpoint: evaluate its weights here instead of training")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    train_text = open(a.train, encoding='utf-8').read()
    valid_text = open(a.valid, encoding='utf-8').read()
    # id 0 is the unknown symbol, as CharVocab; the order of the others does not matter for the model
    chars = sorted(set(train_text))
    ck = None
    if a.load_checkpoint:
        # the checkpoint's own vocabulary and configuration (id 0 = the unknown symbol)
        cfg, ck = read_checkpoint(a.load_checkpoint)
        chars = cfg['vocab'][1:]
        mc = cfg['model']
        a.boundary, a.d_model, a.heads, a.layers = mc['boundary'], mc['dModel'], mc['nHeads'], ','.join(map(str, mc['layers']))
        a.seq_len, a.sf = mc['maxSeqLen'], mc.get('fixedK', a.sf)
        assert mc.get('positions', 'rotary') == 'rotary' and mc.get('ln', 'post') == 'post', 'rotary, post-LN only'
    idx = {c: i + 1 for i, c in enumerate(chars)}
    enc = lambda s: torch.tensor([idx.get(c, 0) for c in s], dtype=torch.long)
    tr, va = enc(train_text), enc(valid_text)
    V = len(chars) + 1
    space_ids = [idx[c] for c in chars if c.isspace()]
    layers = [int(n) for n in a.layers.split(',')]
    model = Hourglass(V, a.d_model, a.heads, layers, a.boundary, space_ids, a.sf, a.emb_scale)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, a.beta2), eps=1e-8)
    total = max(1, a.steps - a.warmup)

    def factor(s):  # s = number of scheduler steps taken so far
        if s < a.warmup:
            return (s + 1) / a.warmup
        t = min(s - a.warmup, total)
        return 0.1 + 0.9 * (1 + math.cos(math.pi * t / total)) / 2

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    T = a.seq_len

    def evaluate():
        model.eval()
        nats, n = 0.0, 0
        limit = min(len(va) - 1, a.eval_tokens)
        starts = [s for s in range(0, len(va) - T, T) if s < limit]
        with torch.no_grad():
            for i in range(0, len(starts), 8):
                w = torch.stack([va[s : s + T + 1] for s in starts[i : i + 8]])
                lg = model(w[:, :-1])
                nats += F.cross_entropy(lg.reshape(-1, V), w[:, 1:].reshape(-1), reduction='sum').item()
                n += w[:, 1:].numel()
        model.train()
        return nats / n / math.log(2)

    if ck is not None:
        model.load_state_dict(ck)  # strict: every name and shape must match
        print(json.dumps({'checkpoint': a.load_checkpoint, 'valid': evaluate()}))
        return
    cpu0 = time.process_time()
    for step in range(1, a.steps + 1):
        st = torch.randint(0, len(tr) - T, (a.batch,))
        w = torch.stack([tr[s : s + T + 1] for s in st.tolist()])
        loss = F.cross_entropy(model(w[:, :-1]).reshape(-1, V), w[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        sched.step()
        if (a.eval_every and step % a.eval_every == 0) or step == a.steps:
            out = {'step': step, 'train': loss.item() / math.log(2), 'valid': evaluate(), 'cpu_s': time.process_time() - cpu0}
            print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
