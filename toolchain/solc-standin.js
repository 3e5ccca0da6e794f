#!/usr/bin/env node
// A stand-in for the native `solc` executable, built on solc-js (the official compiler compiled to wasm).
// It speaks the subset of the command line that ape-solidity (via py-solc-x) and crytic-compile (slither) use:
//   solc --version
//   solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths A,B] [--solc-standard-json]
// The standard-JSON input is read from stdin (or from a file argument) and the output goes to stdout.
'use strict';
const fs = require('fs');
const path = require('path');

const solcModule = process.env.PB_SOLCJS_MODULE || path.join(__dirname, '..', 'node_modules', 'solc');
const solc = require(solcModule);

function parseArgs(argv) {
  const opts = { basePath: null, includePaths: [], allowPaths: [], standardJson: false, version: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (arg.includes('=')) return arg.slice(arg.indexOf('=') + 1);
      i += 1;
      return argv[i];
    };
    if (arg === '--version' || arg === '-v') opts.version = true;
    else if (arg === '--standard-json' || arg === '--solc-standard-json') opts.standardJson = true;
    else if (arg.startsWith('--base-path')) opts.basePath = takeValue();
    else if (arg.startsWith('--include-path')) opts.includePaths.push(takeValue());
    else if (arg.startsWith('--allow-paths')) opts.allowPaths.push(...takeValue().split(','));
    else if (arg.startsWith('--')) { /* flags without meaning for the wasm compiler are accepted and ignored */ }
    else opts.files.push(arg);
  }
  return opts;
}

function makeImportResolver(opts) {
  const roots = [];
  if (opts.basePath) roots.push(opts.basePath);
  roots.push(...opts.includePaths, ...opts.allowPaths, process.cwd());
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      } catch (_) { /* try the next root */ }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc-standin: only --version and --standard-json are supported\n');
    return 2;
  }
  const input = opts.files.length > 0 ? fs.readFileSync(opts.files[0], 'utf8') : fs.readFileSync(0, 'utf8');
  // Sources given by path only ("urls") are loaded here, as native solc would do.
  const parsed = JSON.parse(input);
  const resolve = makeImportResolver(opts);
  for (const [name, source] of Object.entries(parsed.sources || {})) {
    if (source.content === undefined && Array.isArray(source.urls)) {
      for (const url of source.urls) {
        const found = resolve(url);
        if (found.contents !== undefined) { source.content = found.contents; delete source.urls; break; }
      }
    }
  }
  // PB_SOLC_EXTRA_SETTINGS (JSON) is merged into the input's settings: it lets tools that build their own
  // standard-JSON input (slither) compile with the project's settings, e.g. {"viaIR": true, ...}.
  if (process.env.PB_SOLC_EXTRA_SETTINGS) {
    parsed.settings = Object.assign(parsed.settings || {}, JSON.parse(process.env.PB_SOLC_EXTRA_SETTINGS));
  }
  const output = solc.compile(JSON.stringify(parsed), { import: resolve });
  process.stdout.write(output);
  return 0;
}

process.exitCode = main();
