// Progress of long work: step, loss, throughput and time left, as a line a CLI can show as a bar.

export interface ProgressState {
  step: number;
  total: number;
  /** Smoothed loss (exponential moving average), or undefined if none was reported. */
  loss?: number;
  /** Items (steps, tokens, samples) per second over the run. */
  rate: number;
  elapsedS: number;
  etaS: number;
}

export class Progress {
  private readonly start = Date.now();
  private lastRender = 0;
  private ema: number | undefined;
  private items = 0;

  constructor(
    readonly total: number,
    readonly opts: {
      label?: string;
      /** Items per step for the throughput (e.g. tokens per batch). */
      itemsPerStep?: number;
      unit?: string;
      /** Where lines go; defaults to stderr (a redrawn bar on a TTY, a line every 5 s otherwise). */
      write?: (line: string, final: boolean) => void;
      startStep?: number;
    } = {},
  ) {}

  update(step: number, loss?: number): ProgressState {
    if (loss !== undefined && Number.isFinite(loss))
      this.ema = this.ema === undefined ? loss : 0.9 * this.ema + 0.1 * loss;
    this.items += this.opts.itemsPerStep ?? 1;
    const elapsedS = (Date.now() - this.start) / 1000;
    const done = step - (this.opts.startStep ?? 0);
    const stepRate = elapsedS > 0 ? done / elapsedS : 0;
    const state: ProgressState = {
      step,
      total: this.total,
      loss: this.ema,
      rate: elapsedS > 0 ? this.items / elapsedS : 0,
      elapsedS,
      etaS: stepRate > 0 ? (this.total - step) / stepRate : Number.POSITIVE_INFINITY,
    };
    const final = step >= this.total;
    const now = Date.now();
    const tty = typeof process !== 'undefined' && process.stderr?.isTTY;
    if (final || now - this.lastRender > (tty ? 100 : 5000)) {
      this.lastRender = now;
      const line = this.format(state);
      if (this.opts.write) this.opts.write(line, final);
      else if (typeof process !== 'undefined')
        process.stderr.write(tty ? `\r${line}${final ? '\n' : ''}` : `${line}\n`);
    }
    return state;
  }

  format(s: ProgressState): string {
    const width = 24;
    const frac = Math.min(1, s.total > 0 ? s.step / s.total : 0);
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const eta = Number.isFinite(s.etaS) ? fmtTime(s.etaS) : '?';
    const loss = s.loss === undefined ? '' : ` loss ${s.loss.toFixed(4)}`;
    return `${this.opts.label ? `${this.opts.label} ` : ''}${bar} ${s.step}/${s.total}${loss} ${s.rate.toFixed(1)} ${this.opts.unit ?? 'it'}/s eta ${eta}`;
  }
}

function fmtTime(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}:${String(sec).padStart(2, '0')}`;
}
