'use strict';
// Runs one local EMR step. The server starts this detached so a step outlives a server restart:
// the runner owns the command's lifetime and leaves `exit_code` behind for whichever server
// instance is watching when the command ends. Plain CommonJS so `node` starts it without tsx.
//
// usage: node step-runner.js <step log dir> <step id>
//        node step-runner.js --standby <tag>   (started ahead of a step, so a step does not wait
//        for node to start: it reads "<step log dir>\t<step id>\n" on stdin, then runs as above;
//        stdin closed first, e.g. the server gone, and it exits having done nothing)
// reads <dir>/command.json {command, args, cwd}; writes <dir>/pid (the command's pid, which is
// also its process group id), <dir>/stdout, <dir>/stderr and finally <dir>/exit_code:
// "<code>\n" or "<128 + signal number>\n<signal name>\n".

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

let dir;
let finished = false;
let child;
let stderr;

function writeAtomic(name, text) {
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

function finish(code, signal) {
  if (finished) return;
  finished = true;
  writeAtomic('exit_code', signal ? `${code}\n${signal}\n` : `${code}\n`);
  process.exit(0);
}

// Stopping the runner politely stops the step with it instead of orphaning the command.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    if (!dir) process.exit(0); // standing by: no step yet
    if (child && child.pid) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    } else {
      finish(128 + os.constants.signals[sig], sig);
    }
  });
}

function run() {
  const stdout = fs.openSync(path.join(dir, 'stdout'), 'a');
  stderr = fs.openSync(path.join(dir, 'stderr'), 'a');
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'command.json'), 'utf8'));
    // detached: its own process group, so a cancel can signal spark-submit's JVM and Python
    // workers together without touching this runner.
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: process.env,
      stdio: ['ignore', stdout, stderr],
      detached: true,
    });
  } catch (err) {
    fs.writeSync(stderr, `local EMR: cannot start the step: ${err.message}\n`);
    finish(127, null);
  }

  child.on('spawn', () => writeAtomic('pid', `${child.pid}\n`));
  child.on('error', (err) => {
    fs.writeSync(stderr, `local EMR: cannot start ${child.spawnfile}: ${err.message}\n`);
    finish(err.code === 'ENOENT' ? 127 : 126, null);
  });
  child.on('exit', (code, signal) => {
    if (signal) finish(128 + (os.constants.signals[signal] || 0), signal);
    else finish(code === null ? 1 : code, null);
  });
}

if (process.argv[2] === '--standby') {
  let line = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    line += chunk;
    const end = line.indexOf('\n');
    if (end < 0 || dir) return;
    [dir] = line.slice(0, end).split('\t');
    // From here on the step is this process's: the server going away must not stop it.
    process.stdin.removeAllListeners('end');
    process.stdin.destroy();
    run();
  });
  process.stdin.on('end', () => process.exit(0));
} else {
  dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: step-runner.js <step log dir> <step id> | --standby <tag>\n');
    process.exit(64);
  }
  run();
}
