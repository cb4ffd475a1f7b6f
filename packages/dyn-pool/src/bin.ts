#!/usr/bin/env node
// The `dyn-pool` command.
import { main } from './cli.js';

main().then((code) => {
  process.exitCode = code;
});
