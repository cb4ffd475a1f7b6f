import { describe, expect, it } from 'vitest';
import { UnigramTokenizer, WORD_PREFIX as W } from '../src/index.js';

/** Every segmentation of s into vocabulary pieces, by brute force. */
function allSegmentations(s: string, vocab: Set<string>): string[][] {
  if (s === '') return [[]];
  const out: string[][] = [];
  for (let e = 1; e <= s.length; e++) {
    const p = s.slice(0, e);
    if (vocab.has(p)) for (const rest of allSegmentations(s.slice(e), vocab)) out.push([p, ...rest]);
  }
  return out;
}

function makeText(seed: number, nWords: number): string {
  const lex = ['the', 'cat', 'sat', 'on', 'mat', 'there', 'then', 'catalog', 'matter', 'on', 'the', 'the'];
  let x = seed;
  const words: string[] = [];
  for (let i = 0; i < nWords; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    words.push(lex[x % lex.length]!);
  }
  return words.join(' ');
}

describe('UnigramTokenizer', () => {
  it('Viterbi finds the most probable segmentation (checked by brute force)', () => {
    const pieces = [
      [`${W}a`, -2],
      ['a', -3],
      ['b', -3],
      ['ab', -2.5],
      ['ba', -4],
      [`${W}ab`, -6],
      [W, -1],
      ['aba', -5.8],
    ] as const;
    const tok = new UnigramTokenizer(pieces.map(([piece, score]) => ({ piece, score })));
    const score = new Map<string, number>(pieces);
    for (const word of ['abab', 'aab', 'babba', 'ababa', 'b']) {
      const w = W + word;
      const segs = allSegmentations(w, new Set(score.keys()));
      const best = Math.max(...segs.map((s) => s.reduce((a, p) => a + score.get(p)!, 0)));
      const got = tok.encodeWord(w);
      expect(got.pieces.join('')).toBe(w);
      expect(got.logProb).toBeCloseTo(best, 10);
    }
  });

  it('unknown characters become single pieces with a penalty, never an error', () => {
    const tok = new UnigramTokenizer([
      { piece: W, score: -1 },
      { piece: 'a', score: -1 },
    ]);
    const r = tok.encodeWord(`${W}aža`);
    expect(r.pieces).toEqual([W, 'a', 'ž', 'a']);
    expect(r.logProb).toBeLessThan(-10);
  });

  it('training keeps every character, reaches the vocabulary size and learns the frequent words', () => {
    const text = makeText(7, 3000);
    const tok = UnigramTokenizer.train(text, { vocabSize: 40 });
    expect(tok.size).toBeLessThanOrEqual(40);
    for (const c of new Set(text.replace(/ /g, ''))) expect(tok.has(c)).toBe(true);
    expect(tok.has(W)).toBe(true);
    expect(tok.has(`${W}the`)).toBe(true);
    // probabilities sum to 1
    const z = tok.pieces.reduce((a, p) => a + Math.exp(p.score), 0);
    expect(z).toBeCloseTo(1, 6);
    // round trip: pieces concatenate to the text with ▁ for the spaces
    expect(tok.encode(text).join('')).toBe(W + text.split(' ').join(W));
    // JSON round trip
    const again = UnigramTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(again.encode('the catalog')).toEqual(tok.encode('the catalog'));
    expect(() => UnigramTokenizer.train('   ', { vocabSize: 10 })).toThrow(/no words/);
    expect(() => UnigramTokenizer.train('abcdef', { vocabSize: 3 })).toThrow(/distinct characters/);
  });

  it('boundaries: spaces close groups, the ▁ moves to the end of the previous group', () => {
    const tok = new UnigramTokenizer(
      [`${W}c`, 'at', `${W}the`, W, 'a', 't', 'c', 'h', 'e', 's'].map((piece) => ({ piece, score: -1 })),
    );
    // "the cats": pieces ▁the | ▁c at s → groups "the␣" "c" "at" "s"
    expect(tok.encode('the cats')).toEqual([`${W}the`, `${W}c`, 'at', 's']);
    expect(Array.from(tok.boundaries('the cats'))).toEqual([0, 0, 0, 1, 1, 0, 1, 0]);
    // leading/double spaces: every whitespace character closes a group
    expect(Array.from(tok.boundaries(' the  c'))).toEqual([1, 0, 0, 0, 1, 1, 0]);
  });

  it('boundaries by runs equal the per-character form, with astral characters, lone surrogates and all whitespace', () => {
    // The per-character form the tokenizer used before reading the text run by run (kept here as the reference).
    const reference = (tok: UnigramTokenizer, text: string) => {
      const cs = [...text];
      const b = new Uint8Array(cs.length);
      let i = 0;
      while (i < cs.length) {
        if (/\s/u.test(cs[i]!)) {
          b[i++] = 1;
          continue;
        }
        const start = i;
        while (i < cs.length && !/\s/u.test(cs[i]!)) i++;
        const { pieces } = tok.encodeWord(W + cs.slice(start, i).join(''));
        let pos = start - 2;
        for (let p = 0; p < pieces.length - 1; p++) {
          pos += [...pieces[p]!].length;
          if (pos >= start) b[pos] = 1;
        }
      }
      return Array.from(b);
    };
    const tok = UnigramTokenizer.train(`${makeText(3, 2000)} 𝒞at𝒞 mat😀ter`, { vocabSize: 60 });
    const texts = [
      makeText(11, 200),
      ` \tthe\u00a0cat\u3000sat\u2028on\r\nthe 𝒞at😀 \ud800mat\udfff ter 😀😀`,
      '😀',
      '   ',
      '',
      'x',
      `the\ufeffcat\u2003\u200amat`,
    ];
    for (const t of texts) expect(Array.from(tok.boundaries(t)), JSON.stringify(t)).toEqual(reference(tok, t));
  });
});
