#!/usr/bin/env node
// ggp-spatium: validate | mgdl | compile | perf | play | serve | tune | conformance
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileProgram } from './compiler.js';
import { conformanceSweep, type SheetReport, sweepSummary } from './conformance.js';
import { fmtIssue } from './errors.js';
import { type DuelGame, type DuelResult, duel, duelTable } from './experiment.js';
import { BoardFeatures, DEFAULT_WEIGHTS } from './features.js';
import { loadGame } from './game.js';
import { parseGdl, rulesText } from './gdl.js';
import { GdlIIPlayer } from './gdl2.js';
import { type GameMachine, randomPlayout, rng } from './machine.js';
import { type Agent, LocalAgent, type MatchRecord, playMatch, RemoteAgent } from './match.js';
import { checkMgdl, normaliseMgdl } from './mgdl.js';
import { ParallelUctPlayer } from './parallel.js';
import { MonteCarloPlayer, type Player, RandomPlayer, UctPlayer } from './players.js';
import { prepareRules } from './prepare.js';
import { createPlayerServer } from './server.js';
import { type Genome, genomePlayer, tune } from './tune.js';
import { validateRules } from './validate.js';

const USAGE = `usage: ggp-spatium <command> [options]
  validate <sheet.kif>                      GDL validity checks (exit 1 on errors)
  mgdl <sheet.kif> [--print]                is it mGDL, why not; normalise (--print: the normal form)
  compile <sheet.kif> [--out gen.js]        compile to JavaScript; print timing and relation sizes
  perf <sheet.kif...> [--seconds 5] [--engine compiled|interpreter]
                                            random playouts/s (gdl-perf's definition), single thread
  play <sheet.kif> --players uct,random [--games 1] [--playclock 1] [--startclock 10] [--threads 1] [--out dir]
                                            a match; players: random, mc, uct, uct+features, gdl2, or http://host:port
                                            (--threads N: uct and uct+features search on N threads;
                                            --lenient: spec violations are warnings, as for serve and perf)
  versus <sheet.kif...> [--players uct+features,uct] [--games 40] [--iterations N | --playclock 0.2]
         [--weights tuned.json] [--seed 1]  a duel per sheet, colours alternated; a table with 95% Wilson intervals
         [--cpu-clock] [--out r.json]       (uct+tuned: the sheet's genome from --weights, keyed by sheet name;
         [--lenient]                        --cpu-clock: the playclock is CPU time; --out: the totals and one record
                                            per game, replaced atomically after each game; --lenient: as for play)
  serve [--port 9147] [--player uct] [--threads 1]
                                            GGP protocol player server (GDL-II sheets: the belief-state player)
  tune <sheet.kif> [--generations 6] [--population 8] [--games 4] [--playclock 0.05 | --iterations N
       [--opponent-iterations M]] [--anti-decisive] [--switches '{"biasPlayouts":false}'] [--seed 1] [--out w.json]
       [--cpu-clock] [--checkpoint ck.json] SGA tuning of feature weights, UCT constants and the playout form by
       [--lenient] [--jobs 1]               self-play against plain UCT (--checkpoint: resumable; --lenient: as for
       [--confirm-games G]                  play; --jobs: processes playing the fitness games side by side;
       [--job-timeout 300]                  --confirm-games: games the 3 best replay at the end, default --games;
                                            --job-timeout: seconds a job may spend on one ply before it is
                                            stopped as hung and the run fails, resumable from --checkpoint)
  conformance [dir] [--playouts 100] [--time 20] [--out report.json] [--only name,name…] [--from i] [--to j] [--inprocess]
              [--no-ground] [--resume]      parse / mGDL / compile / compiled ≡ interpreter over every sheet, each in a
                                            child limited in CPU time (--time per check) and heap; --out is rewritten
                                            after each sheet and --resume skips the sheets it holds`;

const read = (f: string) => readFileSync(f, 'utf8');
const gameName = (f: string) => basename(f).replace(/\.kif$/, '');

function makePlayer(spec: string, weights?: number[], threads = 1): Player {
  switch (spec) {
    case 'random':
      return new RandomPlayer();
    case 'mc':
    case 'montecarlo':
      return new MonteCarloPlayer();
    case 'uct':
      return threads > 1 ? new ParallelUctPlayer({ threads }) : new UctPlayer();
    case 'uct+features':
      return threads > 1
        ? new ParallelUctPlayer({ threads, weights: weights ?? DEFAULT_WEIGHTS, name: `uct+featuresx${threads}` })
        : new UctPlayer({ bias: new BoardFeatures(weights), name: 'uct+features' });
    case 'gdl2':
      return new GdlIIPlayer() as Player;
    default:
      throw new Error(`unknown player '${spec}' (random, mc, uct, uct+features, gdl2, or a URL)`);
  }
}

function agentFor(spec: string, seed: number, weights?: number[], threads = 1, machine?: GameMachine): Agent {
  if (/^https?:\/\//.test(spec)) return new RemoteAgent(spec);
  return new LocalAgent(makePlayer(spec, weights, threads), seed, undefined, undefined, machine);
}

/** Runs one CLI command; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { values: o, positionals: pos } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      print: { type: 'boolean' },
      seconds: { type: 'string' },
      engine: { type: 'string' },
      players: { type: 'string' },
      games: { type: 'string' },
      playclock: { type: 'string' },
      startclock: { type: 'string' },
      port: { type: 'string' },
      player: { type: 'string' },
      generations: { type: 'string' },
      population: { type: 'string' },
      seed: { type: 'string' },
      playouts: { type: 'string' },
      time: { type: 'string' },
      only: { type: 'string' },
      resume: { type: 'boolean' },
      'no-ground': { type: 'boolean' },
      weights: { type: 'string' },
      iterations: { type: 'string' },
      threads: { type: 'string' },
      jobs: { type: 'string' },
      'confirm-games': { type: 'string' },
      'job-timeout': { type: 'string' },
      'opponent-iterations': { type: 'string' },
      inprocess: { type: 'boolean' },
      'anti-decisive': { type: 'boolean' },
      switches: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'cpu-clock': { type: 'boolean' },
      checkpoint: { type: 'string' },
      lenient: { type: 'boolean' },
    },
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  switch (cmd) {
    case 'validate': {
      let bad = 0;
      for (const f of pos) {
        const rep = validateRules(parseGdl(read(f)));
        for (const e of rep.errors) console.log(`${f}:${fmtIssue(e)}`);
        for (const w of rep.warnings) console.log(`${f}:${fmtIssue(w)} (warning)`);
        console.log(
          `${f}: ${rep.errors.length ? 'INVALID' : 'valid'} (${rep.errors.length} errors, ${rep.warnings.length} warnings)`,
        );
        if (rep.errors.length) bad++;
      }
      return bad ? 1 : 0;
    }
    case 'mgdl': {
      for (const f of pos) {
        const rules = parseGdl(read(f));
        const why = checkMgdl(rules);
        const n = normaliseMgdl(rules);
        console.log(`${f}: ${why.length ? 'not mGDL' : 'mGDL'}`);
        for (const w of why) console.log(`  ${fmtIssue(w)}`);
        console.log(
          `  normalised: ${n.remaining.length ? 'still not mGDL' : 'mGDL'}; spread ${n.spread.join(', ') || 'nothing'}; or removed`,
        );
        for (const w of n.remaining) console.log(`  remaining: ${fmtIssue(w)}`);
        if (o.print) console.log(rulesText(n.rules));
      }
      return 0;
    }
    case 'compile': {
      const f = pos[0]!;
      const t0 = performance.now();
      const norm = normaliseMgdl(parseGdl(read(f)));
      const g = prepareRules(norm.rules, { strict: false });
      const p = compileProgram({ ...g, writtenArity: norm.writtenArity });
      console.log(
        `${f}: compiled in ${(performance.now() - t0).toFixed(0)} ms; ${p.rels.length} relations; ${p.source.length} bytes of JavaScript; sha256 ${p.hash.slice(0, 16)}`,
      );
      if (o.out) {
        writeFileSync(o.out, `// generated by ggp-spatium from ${basename(f)}; sha256 ${p.hash}\n${p.source}\n`);
        console.log(`wrote ${o.out}`);
      }
      return 0;
    }
    case 'perf': {
      const secs = num(o.seconds, 5);
      for (const f of pos) {
        const t0 = performance.now();
        const m = loadGame(read(f), { engine: (o.engine as 'compiled' | 'interpreter') ?? 'auto', strict: false });
        const rand = rng(1);
        randomPlayout(m, m.initialState(), rand);
        const first = performance.now() - t0;
        const w0 = performance.now();
        while (performance.now() - w0 < Math.min(1000, secs * 200)) randomPlayout(m, m.initialState(), rand);
        let n = 0;
        let plies = 0;
        const t1 = performance.now();
        while (performance.now() - t1 < secs * 1000) {
          plies += randomPlayout(m, m.initialState(), rand).plies;
          n++;
        }
        const dt = (performance.now() - t1) / 1000;
        console.log(
          `${gameName(f).padEnd(24)} ${m.kind.padEnd(11)} ${(n / dt).toFixed(1).padStart(10)} playouts/s ${((plies + n) / dt).toFixed(0).padStart(9)} states/s  ${(plies / Math.max(1, n)).toFixed(1)} plies  first playout ${first.toFixed(0)} ms`,
        );
      }
      return 0;
    }
    case 'play': {
      const f = pos[0]!;
      const specs = (o.players ?? 'uct,random').split(',');
      const games = num(o.games, 1);
      const recs: MatchRecord[] = [];
      const weights = o.weights ? (JSON.parse(read(o.weights)) as { weights: number[] }).weights : undefined;
      // --lenient: the rules loaded once, as the server loads them, for the referee and every local player
      const lenient = o.lenient ? loadGame(read(f), { strict: false }) : undefined;
      for (let gi = 0; gi < games; gi++) {
        const rec = await playMatch(
          read(f),
          specs.map((s, i) => agentFor(s, gi * 10 + i + 1, weights, num(o.threads, 1), lenient)),
          {
            playclock: num(o.playclock, 1),
            startclock: num(o.startclock, 10),
            seed: gi + 1,
            game: gameName(f),
            strict: !o.lenient,
          },
        );
        recs.push(rec);
        console.log(
          `game ${gi + 1}: ${rec.roles.map((r, i) => `${r}=${rec.players[i]}:${rec.goals[i]}`).join(' ')} in ${rec.plies} plies${rec.errors.length ? ` (${rec.errors.length} referee corrections)` : ''}`,
        );
        if (o.out) {
          mkdirSync(o.out, { recursive: true });
          writeFileSync(join(o.out, `${rec.matchId}.json`), JSON.stringify(rec, null, 1));
        }
      }
      return 0;
    }
    case 'versus': {
      const specs = (o.players ?? 'uct+tuned,uct').split(',');
      if (specs.length !== 2) throw new Error('versus takes two players');
      const file = o.weights ? (JSON.parse(read(o.weights)) as Record<string, Genome> | Genome) : undefined;
      const rows: DuelResult[] = [];
      const budget = o.iterations
        ? `${o.iterations} iterations per move`
        : `${num(o.playclock, 0.2)} s per move${o['cpu-clock'] ? ' (CPU time)' : ''}`;
      console.log(`versus: ${specs.join(' vs ')}, ${budget}, colours alternated`);
      const records: DuelGame[] = [];
      // written to a temporary file and renamed over --out, so a run killed mid-write leaves the previous
      // complete file: a cut run keeps every game it finished
      const save = (all: DuelResult[]) => {
        if (!o.out) return;
        const tmp = `${o.out}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify({ budget, rows: all, records }, null, 1));
        renameSync(tmp, o.out);
      };
      for (const f of pos) {
        const name = gameName(f);
        const genome =
          file && 'weights' in file ? (file as Genome) : (file as Record<string, Genome> | undefined)?.[name];
        const make = (spec: string): Player => {
          if (spec === 'uct+tuned') {
            if (!genome) throw new Error(`no tuned genome for ${name} in ${o.weights ?? '(no --weights)'}`);
            return genomePlayer(genome, 'uct+tuned', o['cpu-clock'] ? 'cpu' : 'wall');
          }
          if (spec === 'uct' && o['cpu-clock']) return new UctPlayer({ clock: 'cpu' });
          return makePlayer(spec, undefined, num(o.threads, 1));
        };
        const r = await duel(
          read(f),
          () => make(specs[0]!),
          () => make(specs[1]!),
          {
            games: num(o.games, 40),
            iterations: o.iterations ? Number(o.iterations) : undefined,
            playclock: num(o.playclock, 0.2),
            seed: num(o.seed, 1),
            game: name,
            strict: !o.lenient,
            progress: (n, r, game) => {
              records.push(game);
              // a cut run keeps what it played: the rows so far, this sheet's partial row last
              save([...rows, r]);
              if (n % 10 === 0 || n === num(o.games, 40))
                console.log(
                  `  ${name} ${n} games: ${r.wins}/${r.draws}/${r.losses} score ${(100 * r.score).toFixed(0)}% [${(100 * r.lo).toFixed(0)}, ${(100 * r.hi).toFixed(0)}]`,
                );
            },
          },
        );
        rows.push(r);
      }
      console.log(duelTable(rows));
      save(rows);
      return 0;
    }
    case 'serve': {
      const spec = o.player ?? 'uct';
      const srv = createPlayerServer({
        port: num(o.port, 9147),
        makePlayer: () => makePlayer(spec, undefined, num(o.threads, 1)),
        log: (l) => console.log(`${new Date().toISOString()} ${l}`),
      });
      const port = await srv.listen();
      console.log(`ggp-spatium (${spec}) listening on port ${port}`);
      await new Promise(() => {});
      return 0;
    }
    case 'tune': {
      const f = pos[0]!;
      const res = await tune(read(f), {
        generations: num(o.generations, 6),
        population: num(o.population, 8),
        gamesPerEval: num(o.games, 4),
        playclock: num(o.playclock, 0.05),
        iterations: o.iterations === undefined ? undefined : Number(o.iterations),
        opponentIterations: o['opponent-iterations'] === undefined ? undefined : Number(o['opponent-iterations']),
        seed: num(o.seed, 1),
        cpuClock: o['cpu-clock'] === true,
        checkpoint: o.checkpoint,
        jobs: num(o.jobs, 1),
        confirmGames: o['confirm-games'] === undefined ? undefined : Number(o['confirm-games']),
        jobTimeout: o['job-timeout'] === undefined ? undefined : Number(o['job-timeout']),
        strict: !o.lenient,
        switches: {
          ...(o.switches ? JSON.parse(o.switches) : {}),
          ...(o['anti-decisive'] ? { antiDecisive: true } : {}),
        },
        log: (l) => console.log(l),
      });
      console.log(
        `best fitness ${res.fitness.toFixed(3)} over ${res.games} games; c=${res.c.toFixed(3)} weights=${res.weights.map((w) => w.toFixed(2)).join(',')}`,
      );
      if (o.out) writeFileSync(o.out, JSON.stringify(res, null, 1));
      return 0;
    }
    case 'conformance': {
      const dir = resolve(pos[0] ?? '../shared/ggp-games');
      const playouts = num(o.playouts, 100);
      const timeS = num(o.time, 20);
      // --resume: sheets already in the --out report are kept, not run again
      const done =
        o.resume && o.out && existsSync(o.out) ? (JSON.parse(read(o.out)) as { reports: SheetReport[] }).reports : [];
      const { summary } = await conformanceSweep({
        dir,
        playouts,
        seconds: timeS,
        grounded: !o['no-ground'],
        only: o.only,
        from: num(o.from, 1),
        to: num(o.to, Number.POSITIVE_INFINITY),
        inprocess: o.inprocess,
        done,
        onSheet: (r, i, total, all) => {
          const flag = r.pass
            ? r.timedOut
              ? 'partial'
              : 'pass'
            : r.pass === false
              ? 'FAIL'
              : r.killed
                ? 'killed'
                : r.compile
                  ? 'unchecked'
                  : 'no-compile';
          const why = r.killed ?? r.error;
          console.log(
            `[${i + 1}/${total}] ${r.name.padEnd(36)} ${flag.padEnd(10)} ${r.playouts} playouts ${r.states} states${why ? `  ${why.slice(0, 160)}` : ''}`,
          );
          // rewritten after each sheet (temp file + rename), so a stopped sweep resumes with --resume
          if (o.out) {
            const tmp = `${o.out}.tmp`;
            writeFileSync(tmp, JSON.stringify({ summary: sweepSummary(all, playouts, timeS), reports: all }, null, 1));
            renameSync(tmp, o.out);
          }
        },
      });
      console.log(JSON.stringify(summary));
      return summary.fail ? 1 : 0;
    }
    default:
      console.log(USAGE);
      return cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
  }
}

// run only as the entry script (tests import main)
const entry = process.argv[1] ? resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url) || entry.endsWith('/ggp-spatium') || entry.endsWith('cli.js'))
  main(process.argv.slice(2)).then(
    (code) => {
      if (code) process.exitCode = code;
    },
    (e: Error) => {
      console.error(e.message);
      process.exitCode = 1;
    },
  );
