// External tools the builder may use, and the message that says what to install when one is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const INSTALL: Record<string, string> = {
  npm: 'npm (comes with Node.js >= 20: https://nodejs.org, or `apt-get install npm`)',
  'apt-get': 'a Debian or Ubuntu system with apt (the Debian sources are fetched with `apt-get download`)',
  'dpkg-deb': 'dpkg (`apt-get install dpkg`), to unpack .deb files',
};

export class MissingToolError extends Error {
  readonly tool: string;
  constructor(tool: string, needed: string) {
    super(`${tool} not found on PATH; ${needed} needs it. Install ${INSTALL[tool] ?? tool}.`);
    this.name = 'MissingToolError';
    this.tool = tool;
  }
}

/** Whether `cmd` is an executable on PATH (`env` defaults to process.env). */
export function haveTool(cmd: string, env: NodeJS.ProcessEnv = process.env): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return true;
  }
  return false;
}

export function requireTool(cmd: string, needed: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!haveTool(cmd, env)) throw new MissingToolError(cmd, needed);
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
