#!/usr/bin/env node
// lucid-mesh CLI entry point. It only holds V8's young generation small (startup-heap.ts),
// then loads the program: ES modules are all parsed before any of them runs, so the hold
// must be in place before the import of the command modules starts.
import '../startup-heap.js';

await import('./program.js');
