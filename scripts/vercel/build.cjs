// Build api/ files with Vercel's own Python builder (@vercel/python, pinned in
// package.json) the way `vercel build` does for a zero-config project, and write
// each function's files out. Driven by scripts/vercel_check.py; not deployed.
//
//   node scripts/vercel/build.cjs REQUEST.json
//
// REQUEST: {"workPath", "outDir", "entrypoints": ["api/x.py", ...], "vercelJson": {...}}
// Writes OUTDIR/results.json: one entry per entrypoint, with the builder's
// verdict, the Lambda's settings and where its files are.
'use strict';

const fs = require('fs');
const path = require('path');
const { build } = require('@vercel/python');
const { glob, isSymbolicLink, streamToBuffer } = require('@vercel/build-utils');
const { findAppOrHandler } = require('@vercel/python-analysis');
const { minimatch } = require('minimatch');

// What `vercel build` hands a zero-config api/ builder (fs-detectors'
// maybeGetApiBuilder): the first vercel.json "functions" pattern that matches
// the file, and that entry's includeFiles/excludeFiles.
function zeroConfig(entrypoint, functions) {
  const config = { zeroConfig: true };
  const pattern = Object.keys(functions || {}).find(
    (key) => key === entrypoint || minimatch(entrypoint, key),
  );
  if (pattern) {
    const func = functions[pattern];
    config.functions = { [pattern]: func };
    if (func.includeFiles) config.includeFiles = func.includeFiles;
    if (func.excludeFiles) config.excludeFiles = func.excludeFiles;
  }
  return { pattern: pattern || null, config };
}

async function writeFiles(files, dest) {
  let bytes = 0;
  for (const [rel, file] of Object.entries(files)) {
    const target = path.join(dest, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (file.type === 'FileFsRef' && isSymbolicLink(file.mode)) {
      fs.symlinkSync(fs.readlinkSync(file.fsPath), target);
      continue;
    }
    const data = await streamToBuffer(file.toStream());
    fs.writeFileSync(target, data, { mode: file.mode & 0o777 || 0o644 });
    bytes += data.length;
  }
  return bytes;
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const { workPath, outDir, entrypoints, vercelJson } = request;
  // `vercel deploy` passes vercel.json's build.env to the build.
  Object.assign(process.env, (vercelJson.build && vercelJson.build.env) || {});
  const meta = { skipDownload: true };
  const results = [];
  for (const entrypoint of entrypoints) {
    const result = { entrypoint, ok: false };
    results.push(result);
    const started = Date.now();
    try {
      const source = fs.readFileSync(path.join(workPath, entrypoint), 'utf8');
      // The analyser `vercel build` uses to decide whether a file is a function at all.
      result.entrypointName = await findAppOrHandler(source);
      const { pattern, config } = zeroConfig(entrypoint, vercelJson.functions);
      result.functionsPattern = pattern;
      const files = await glob('**', workPath);
      console.log(`\n=== @vercel/python build ${entrypoint}`);
      const built = await build({
        workPath,
        repoRootPath: workPath,
        files,
        entrypoint,
        config: { ...config, projectSettings: {} },
        meta,
      });
      // Non-service builds answer {resultVersion: 3, result: {output: Lambda}}.
      const lambda = built && built.result ? built.result.output : built && built.output;
      if (!lambda || lambda.type !== 'Lambda') {
        throw new Error(`the builder returned no Lambda (got ${JSON.stringify(Object.keys(built || {}))})`);
      }
      const dest = path.join(outDir, entrypoint.replace(/\.py$/, ''));
      fs.rmSync(dest, { recursive: true, force: true });
      result.bytes = await writeFiles(lambda.files, dest);
      result.dir = dest;
      result.fileCount = Object.keys(lambda.files).length;
      result.lambda = {
        handler: lambda.handler,
        runtime: lambda.runtime,
        architecture: lambda.architecture,
        maxDuration: lambda.maxDuration,
        memory: lambda.memory,
        environment: lambda.environment,
      };
      result.ok = true;
    } catch (err) {
      result.error = err && err.code ? `${err.code}: ${err.message}` : String((err && err.stack) || err);
    }
    result.seconds = (Date.now() - started) / 1000;
  }
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
