#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// A long job makes much short-lived garbage around a small live set; V8's
// default lets the heap grow to ~4× that set before collecting. 1.5× keeps
// peak memory near the live set for a few percent more GC time (BENCHMARKS.md).
setFlagsFromString('--heap-growing-percent=50');

const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv);
