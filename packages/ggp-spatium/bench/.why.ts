import { readFileSync } from 'node:fs';
import { parseGdl } from '../src/gdl.js';
import { prepareRules } from '../src/prepare.js';
import { groundedFromPrepared } from '../src/ground.js';
for (const g of process.argv.slice(2)) {
  try {
    const p = prepareRules(parseGdl(readFileSync(`../../../shared/ggp-games/${g}.kif`, 'utf8')), { strict: false });
    const c0 = process.cpuUsage();
    try { groundedFromPrepared(p); console.log(g, 'GROUNDED?'); } catch (e) { const c = process.cpuUsage(c0); console.log(g, '|', (e as Error).message.slice(0, 90), '|', ((c.user + c.system) / 1e6).toFixed(1), 's'); }
  } catch (e) { console.log(g, '| prepare:', (e as Error).message.slice(0, 80)); }
}
