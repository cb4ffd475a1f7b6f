// A SentencePiece-style unigram language-model tokenizer (Kudo, "Subword Regularization", ACL 2018,
// arXiv 1804.10959), trained by us, for the unigram boundary source of dynamic token pooling (Nawrot et al.,
// ACL 2023, §3.2). As in the paper's setup: text is split on whitespace, each word gets a dummy-prefix "▁",
// no normalisation, full character coverage, pieces of at most 16 characters. Training: seed with frequent
// substrings, then alternate EM (forward-backward over each distinct word) and pruning of the pieces whose
// removal costs the least likelihood, until the vocabulary has the requested size.
import { ValueError } from '@tessera/tensor-core';
import { codePointLength } from './vocab.js';

export const WORD_PREFIX = '\u2581'; // ▁

export interface UnigramPiece {
  piece: string;
  /** log probability */
  score: number;
}

export interface UnigramTrainOptions {
  vocabSize: number;
  maxPieceLength?: number;
  /** Seed vocabulary size before pruning (default 8 × vocabSize). */
  seedSize?: number;
  /** EM iterations per pruning round (default 2). */
  emIterations?: number;
  /** Fraction of the pieces kept by each pruning round (default 0.75, SentencePiece's shrinking factor). */
  shrink?: number;
}

const UNK_PENALTY = 10; // unknown characters: one piece each, scored min − 10 (SentencePiece's kUnkPenalty)

function splitWords(text: string): Map<string, number> {
  const words = new Map<string, number>();
  for (const w of text.split(/\s+/u)) if (w) words.set(WORD_PREFIX + w, (words.get(WORD_PREFIX + w) ?? 0) + 1);
  return words;
}

function logsumexp(a: number, b: number): number {
  if (a === Number.NEGATIVE_INFINITY) return b;
  if (b === Number.NEGATIVE_INFINITY) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

export class UnigramTokenizer {
  private readonly scores: Map<string, number>;
  readonly maxPieceLength: number;
  private readonly unkScore: number;

  constructor(
    readonly pieces: readonly UnigramPiece[],
    opts: { maxPieceLength?: number } = {},
  ) {
    if (pieces.length === 0) throw new ValueError('UnigramTokenizer: empty vocabulary');
    // A NaN score poisons Viterbi (words come out short by characters), a duplicate hides one of its scores.
    const seen = new Set<string>();
    for (const [i, p] of pieces.entries()) {
      if (typeof p?.piece !== 'string' || p.piece.length === 0)
        throw new ValueError(`UnigramTokenizer: piece ${i} is not a non-empty string`);
      if (typeof p.score !== 'number' || !Number.isFinite(p.score))
        throw new ValueError(
          `UnigramTokenizer: piece ${JSON.stringify(p.piece)} has score ${p.score}; scores are finite log-probabilities`,
        );
      if (seen.has(p.piece)) throw new ValueError(`UnigramTokenizer: piece ${JSON.stringify(p.piece)} appears twice`);
      seen.add(p.piece);
    }
    if (opts.maxPieceLength !== undefined && !(Number.isInteger(opts.maxPieceLength) && opts.maxPieceLength >= 1))
      throw new ValueError(`UnigramTokenizer: maxPieceLength must be an integer ≥ 1; got ${opts.maxPieceLength}`);
    this.scores = new Map(pieces.map((p) => [p.piece, p.score]));
    this.maxPieceLength = opts.maxPieceLength ?? Math.max(...pieces.map((p) => [...p.piece].length));
    this.unkScore = Math.min(...pieces.map((p) => p.score)) - UNK_PENALTY;
  }

  get size(): number {
    return this.pieces.length;
  }

  has(piece: string): boolean {
    return this.scores.has(piece);
  }

  /** Viterbi segmentation of one word (with its ▁ prefix) into pieces; unknown characters become single pieces. */
  encodeWord(word: string, exclude?: string): { pieces: string[]; logProb: number } {
    const cs = [...word];
    const n = cs.length;
    const best = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
    const from = new Int32Array(n + 1).fill(-1);
    best[0] = 0;
    for (let e = 1; e <= n; e++) {
      let s = '';
      for (let st = e - 1; st >= 0 && e - st <= this.maxPieceLength; st--) {
        s = cs[st] + s;
        const sc = s === exclude ? undefined : this.scores.get(s);
        const v = sc === undefined ? (e - st === 1 ? this.unkScore : undefined) : sc;
        if (v !== undefined && best[st]! + v > best[e]!) {
          best[e] = best[st]! + v;
          from[e] = st;
        }
      }
    }
    const pieces: string[] = [];
    for (let e = n; e > 0; e = from[e]!) pieces.push(cs.slice(from[e]!, e).join(''));
    return { pieces: pieces.reverse(), logProb: best[n]! };
  }

  /** Pieces of a text: each whitespace-separated word with its ▁ prefix. */
  encode(text: string): string[] {
    const out: string[] = [];
    for (const w of text.split(/\s+/u)) if (w) out.push(...this.encodeWord(WORD_PREFIX + w).pieces);
    return out;
  }

  /**
   * Boundaries per code point of `text` for dynamic pooling: every whitespace character closes a group (the
   * word-initial ▁ moves to the end of the previous group), and so does the last character of every piece
   * that does not end its word.
   */
  boundaries(text: string): Uint8Array {
    // Run by run over the text (whitespace runs and words), not spread into an array of one-character strings:
    // a training corpus is millions of characters and the spread costs tens of bytes each.
    const b = new Uint8Array(codePointLength(text));
    let i = 0; // code point index of the run
    for (const m of text.matchAll(/\s+|\S+/gu)) {
      const run = m[0];
      if (/\s/u.test(run)) {
        // Every Unicode whitespace character is one code unit (all are in the BMP).
        b.fill(1, i, i + run.length);
        i += run.length;
        continue;
      }
      const start = i;
      const { pieces } = this.encodeWord(WORD_PREFIX + run);
      let pos = start - 2; // index i of "▁word" is text position start − 1 + i; pos tracks a piece’s last index
      for (let p = 0; p < pieces.length - 1; p++) {
        pos += codePointLength(pieces[p]!);
        if (pos >= start) b[pos] = 1;
      }
      i += codePointLength(run);
    }
    return b;
  }

  toJSON(): { pieces: UnigramPiece[]; maxPieceLength: number } {
    return { pieces: [...this.pieces], maxPieceLength: this.maxPieceLength };
  }

  static fromJSON(j: { pieces: UnigramPiece[]; maxPieceLength: number }): UnigramTokenizer {
    return new UnigramTokenizer(j.pieces, { maxPieceLength: j.maxPieceLength });
  }

  static train(text: string, opts: UnigramTrainOptions): UnigramTokenizer {
    const { vocabSize, maxPieceLength = 16, emIterations = 2, shrink = 0.75 } = opts;
    const seedSize = opts.seedSize ?? 8 * vocabSize;
    const words = splitWords(text);
    if (words.size === 0) throw new ValueError('UnigramTokenizer.train: the text has no words');
    // Required pieces: every character (coverage 1.0).
    const chars = new Map<string, number>();
    const subs = new Map<string, number>();
    for (const [w, f] of words) {
      const cs = [...w];
      for (const c of cs) chars.set(c, (chars.get(c) ?? 0) + f);
      for (let s = 0; s < cs.length; s++) {
        let p = cs[s]!;
        for (let e = s + 1; e < cs.length && e - s < maxPieceLength; e++) {
          p += cs[e];
          if (cs[e] === WORD_PREFIX) break;
          subs.set(p, (subs.get(p) ?? 0) + f);
        }
      }
    }
    if (vocabSize < chars.size)
      throw new ValueError(
        `UnigramTokenizer.train: vocabSize ${vocabSize} is smaller than the ${chars.size} distinct characters`,
      );
    // Seeds: the most frequent substrings (weighted by length, as longer pieces save more).
    const seeds = [...subs]
      .filter(([, f]) => f > 1)
      .sort((a, b) => b[1] * [...b[0]].length - a[1] * [...a[0]].length || (a[0] < b[0] ? -1 : 1))
      .slice(0, Math.max(0, seedSize - chars.size));
    let vocab = new Map<string, number>([...chars, ...seeds]);
    const normalise = (m: Map<string, number>) => {
      let z = 0;
      for (const f of m.values()) z += f;
      const lz = Math.log(z);
      return new Map([...m].map(([p, f]) => [p, Math.log(f) - lz]));
    };
    let scores = normalise(vocab);
    const wordList = [...words];
    for (let round = 0; round < 100; round++) {
      for (let it = 0; it < emIterations; it++) scores = normalise(expectedCounts(wordList, scores, maxPieceLength));
      if (scores.size <= vocabSize) break;
      // Pruning: the likelihood lost when a piece goes is its Viterbi count × (its score − the score of the
      // best segmentation of the piece without it). Characters always stay.
      const tok = new UnigramTokenizer(
        [...scores].map(([piece, score]) => ({ piece, score })),
        { maxPieceLength },
      );
      const viterbiCount = new Map<string, number>();
      for (const [w, f] of wordList)
        for (const p of tok.encodeWord(w).pieces) viterbiCount.set(p, (viterbiCount.get(p) ?? 0) + f);
      const cost: [string, number][] = [];
      for (const [p, sc] of scores) {
        if (chars.has(p)) continue;
        const vc = viterbiCount.get(p) ?? 0;
        const alt = vc > 0 ? tok.encodeWord(p, p).logProb : 0;
        cost.push([p, vc * (sc - alt)]);
      }
      cost.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      const keep = Math.max(vocabSize, Math.floor(scores.size * shrink)) - chars.size;
      vocab = new Map<string, number>();
      for (const c of chars.keys()) vocab.set(c, Math.exp(scores.get(c)!));
      for (const [p] of cost.slice(0, keep)) vocab.set(p, Math.exp(scores.get(p)!));
      scores = normalise(vocab);
    }
    const pieces = [...scores]
      .map(([piece, score]) => ({ piece, score }))
      .sort((a, b) => b.score - a.score || (a.piece < b.piece ? -1 : 1));
    return new UnigramTokenizer(pieces, { maxPieceLength });
  }
}

/** E-step: expected piece counts over every segmentation of every word (forward-backward in log space). */
function expectedCounts(
  words: readonly [string, number][],
  scores: Map<string, number>,
  maxLen: number,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [w, f] of words) {
    const cs = [...w];
    const n = cs.length;
    const edges: [number, number, string, number][] = [];
    for (let s = 0; s < n; s++) {
      let p = '';
      for (let e = s; e < n && e - s < maxLen; e++) {
        p += cs[e];
        const sc = scores.get(p);
        if (sc !== undefined) edges.push([s, e + 1, p, sc]);
      }
    }
    const alpha = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
    const beta = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
    alpha[0] = 0;
    beta[n] = 0;
    edges.sort((a, b) => a[1] - b[1]);
    for (const [s, e, , sc] of edges) alpha[e] = logsumexp(alpha[e]!, alpha[s]! + sc);
    for (let i = edges.length - 1; i >= 0; i--) {
      const [s, e, , sc] = edges[i]!;
      beta[s] = logsumexp(beta[s]!, beta[e]! + sc);
    }
    const z = alpha[n]!;
    if (z === Number.NEGATIVE_INFINITY) continue;
    for (const [s, e, p, sc] of edges) {
      const post = Math.exp(alpha[s]! + sc + beta[e]! - z);
      if (post > 0) counts.set(p, (counts.get(p) ?? 0) + f * post);
    }
  }
  // Pieces with no expected count get a tiny floor so characters never vanish.
  for (const p of scores.keys()) if (!counts.has(p)) counts.set(p, 1e-6);
  return counts;
}
