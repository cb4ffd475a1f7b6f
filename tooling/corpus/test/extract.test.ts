import { cleanText } from '@tessera/datasets';
import { describe, expect, test } from 'vitest';
import {
  brownToText,
  dictdEntries,
  dictdNumber,
  dropEnglishLines,
  htmlToText,
  morphhbVerses,
  promptSentences,
  roffToText,
  splitFortunes,
} from '../src/extract.js';
import { normalizeTranscript, parseTranscripts } from '../src/real.js';

describe('source formats', () => {
  test('Brown: tags stripped, punctuation and quotes re-attached', () => {
    const src =
      "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, did/dod n't/* it/pps ?/.\n\n\tNext/ap line/nn ./.\n";
    expect(brownToText(src)).toBe('The jury said "no evidence", didn\'t it?\nNext line.');
  });

  test('fortunes split on % lines', () => {
    expect(splitFortunes('one\nline\n%\ntwo\n%\n\n%\nthree\n%\n')).toEqual(['one\nline', 'two', 'three']);
  });

  test('HTML: head and scripts dropped, blocks to lines, entities decoded', () => {
    const html =
      '<html><head><title>T</title></head><body><h1>Título</h1><p>Uno &amp; dos<br>tres</p><script>x()</script></body></html>';
    expect(htmlToText(html)).toBe('Título\nUno & dos\ntres');
  });

  test('roff: requests dropped, font escapes removed, heading text kept', () => {
    const roff =
      '.TH LS 1\n.SH NIMI\nls \\- listaa \\fBhakemiston\\fR sisältö\n.PP\n.B \\-a\nnäytä kaikki\n.\\" comment\n';
    expect(roffToText(roff)).toBe('NIMI\nls - listaa hakemiston sisältö\n-a\nnäytä kaikki');
  });

  test('OSHB verses: morpheme slashes removed, maqaf joins, notes dropped; points go in cleaning', () => {
    const xml = `<verse osisID="Gen.1.1"><w lemma="b/7225">בְּ/רֵאשִׁ֖ית</w>
      <w>אֵ֥ת</w><seg type="x-maqqef">־</seg><w>הַ/שָּׁמַ֖יִם</w><note type="variant"><w>X</w></note><seg type="x-sof-pasuq">׃</seg></verse>`;
    const [v] = morphhbVerses(xml);
    expect(v!.key).toBe('Gen.1.1');
    expect(cleanText(v!.text)).toBe('בראשית את־השמים׃');
  });

  test('English fallback lines are dropped from localized text', () => {
    const t = 'Valitse Muotoilu - Tyylit.\nSelect the text that you want to format in the dialog box.\nls -la /tmp';
    expect(dropEnglishLines(t)).toBe('Valitse Muotoilu - Tyylit.\nls -la /tmp');
    expect(dropEnglishLines('Выберите формат текста сейчас\nPress the button to open it', 'ru')).toBe(
      'Выберите формат текста сейчас',
    );
    expect(dropEnglishLines('Chọn định dạng văn bản này\nClick here to open this file', 'vi')).toBe(
      'Chọn định dạng văn bản này',
    );
  });

  test('speech prompts: plain sentences of 4-18 words', () => {
    const s =
      'Call me Ishmael. Some years ago, never mind how long, I went to sea. ABSOLUTELY NOT ALLOWED HERE AT ALL. The number 42 is out. Short one here.';
    expect(promptSentences(s)).toEqual(['Some years ago, never mind how long, I went to sea.']);
  });

  test('dictd: base64 offsets into the dictionary, meta entries skipped', () => {
    expect(dictdNumber('A')).toBe(0);
    expect(dictdNumber('BA')).toBe(64);
    expect(dictdNumber('/')).toBe(63);
    const dict = new TextEncoder().encode('meta\nfoo\n  a word\nbar\n  another\n');
    const index = '00-database-info\tA\tF\nfoo\tF\tN\nbar\tS\tO\n';
    expect(dictdEntries(index, dict)).toEqual([
      ['foo', 'foo\n  a word\n'],
      ['bar', 'bar\n  another\n'],
    ]);
  });

  test('asterisk transcripts', () => {
    const m = parseTranscripts(
      '; Core sounds\n\nagent-pass: Please enter your password followed by the pound key.\ndigits/7: Seven\n',
    );
    expect([...m.keys()]).toEqual(['agent-pass', 'digits/7']);
    expect(normalizeTranscript('Press 1, then #, or * 25 for 100.')).toBe(
      'press one then pound or star twenty five for one hundred',
    );
  });
});
