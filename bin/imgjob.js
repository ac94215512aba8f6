#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with llhttp, a WebAssembly module, and V8 recompiles
// its parse function with TurboFan after the second response by default:
// ~120 ms of CPU on a background thread, which the process waits for at
// exit, as much as the rest of a run of a few images. With this budget the
// recompile comes after some 100–200 responses, where it pays. Set here,
// for the command's process (download threads included), not by the
// library in its caller's process.
setFlagsFromString('--wasm-tiering-budget=1000000000');

const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv);
