'use strict';
// Runs local EMR steps. The server starts this detached so a step outlives a server restart: the
// runner owns each command's lifetime and leaves `exit_code` behind for whichever server instance
// is watching when the command ends. Plain CommonJS so `node` starts it without tsx.
//
// usage: node step-runner.js <step log dir> <step id>
//        node step-runner.js --standby <tag>   (started ahead of the server's steps and serving
//        all of them, so no step waits for node to start nor pays for it: it reads
//        "<step log dir>\t<step id>\n" lines on stdin and runs each step as it arrives, writing
//        "<step id>\n" on stdout once that step's exit_code is written, or
//        "<step id>\t<code>\t<signal>\t<why>\n" when it could not be. When stdin closes (the
//        server gone) it takes no more steps and exits once its running steps have ended.)
// For each step it reads <dir>/command.json {command, args, cwd}; writes <dir>/pid (the command's
// pid, which is also its process group id), <dir>/stdout, <dir>/stderr and finally
// <dir>/exit_code: "<code>\n" or "<128 + signal number>\n<signal name>\n".

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

/** The steps started and not yet finished, by step directory. */
const running = new Map();
let accepting = true;

function writeAtomic(dir, name, text) {
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

function exitWhenIdle() {
  if (!accepting && running.size === 0) process.exit(0);
}

/** Appends a line to the step's stderr if it can: the step's own failure must not become ours. */
function note(dir, line) {
  try {
    fs.appendFileSync(path.join(dir, 'stderr'), `local EMR: ${line}\n`);
  } catch {
    // the step directory itself is unusable: the server hears of it on stdout
  }
}

function finish(step, code, signal) {
  if (step.finished) return;
  step.finished = true;
  running.delete(step.dir);
  // One runner serves every step: an exit_code it cannot write (a full disk, a path taken) must
  // not throw and take the other steps down; the server hears the code on stdout instead.
  let unrecorded = '';
  try {
    writeAtomic(step.dir, 'exit_code', signal ? `${code}\n${signal}\n` : `${code}\n`);
  } catch (err) {
    unrecorded = `cannot write the step's exit_code: ${err.message}`.replace(/[\t\n]/g, ' ');
    note(step.dir, unrecorded);
  }
  // The server ticks on it instead of waiting for its next poll; it may be gone (EPIPE: ignored).
  if (step.id) {
    process.stdout.write(
      unrecorded ? `${step.id}\t${code}\t${signal || ''}\t${unrecorded}\n` : `${step.id}\n`,
    );
  }
  exitWhenIdle();
}

function run(dir, id) {
  const step = { dir, id, finished: false, child: undefined };
  running.set(dir, step);
  let stderr;
  try {
    const stdout = fs.openSync(path.join(dir, 'stdout'), 'a');
    stderr = fs.openSync(path.join(dir, 'stderr'), 'a');
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'command.json'), 'utf8'));
    // detached: its own process group, so a cancel can signal spark-submit's JVM and Python
    // workers together without touching this runner or the other steps.
    step.child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: process.env,
      stdio: ['ignore', stdout, stderr],
      detached: true,
    });
    // The child has its own copies now.
    fs.closeSync(stdout);
    fs.closeSync(stderr);
  } catch (err) {
    note(dir, `cannot start the step: ${err.message}`);
    finish(step, 127, null);
    return;
  }
  const child = step.child;
  child.on('spawn', () => {
    try {
      writeAtomic(dir, 'pid', `${child.pid}\n`);
    } catch (err) {
      // Without its pid the server can neither cancel the command nor stop it if this runner
      // dies: it does not run at all.
      note(dir, `cannot write the step's pid, so it was stopped: ${err.message}`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  child.on('error', (err) => {
    // One runner serves every step: nothing here may throw and take the others down with it.
    note(dir, `cannot start ${child.spawnfile}: ${err.message}`);
    finish(step, err.code === 'ENOENT' ? 127 : 126, null);
  });
  child.on('exit', (code, signal) => {
    if (signal) finish(step, 128 + (os.constants.signals[signal] || 0), signal);
    else finish(step, code === null ? 1 : code, null);
  });
}

/** A step handed over while this runner is stopping fails at once rather than never running. */
function refuse(dir, id) {
  const step = { dir, id, finished: false };
  running.set(dir, step);
  note(dir, 'the step runner was stopping; the step did not start');
  finish(step, 1, null);
}

// Stopping the runner politely stops its steps with it instead of orphaning their commands.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    accepting = false;
    for (const step of running.values()) {
      if (step.child && step.child.pid) {
        try {
          process.kill(-step.child.pid, sig);
        } catch {
          // already gone
        }
      } else {
        finish(step, 128 + os.constants.signals[sig], sig);
      }
    }
    exitWhenIdle();
  });
}

process.stdout.on('error', () => undefined);

if (process.argv[2] === '--standby') {
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      const [dir, id] = pending.slice(0, end).split('\t');
      pending = pending.slice(end + 1);
      if (!dir) continue;
      if (accepting) run(dir, id);
      else refuse(dir, id);
    }
  });
  // From here on the steps are this process's: the server going away must not stop them.
  process.stdin.on('end', () => {
    accepting = false;
    exitWhenIdle();
  });
  process.stdin.on('error', () => {
    accepting = false;
    exitWhenIdle();
  });
} else {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: step-runner.js <step log dir> <step id> | --standby <tag>\n');
    process.exit(64);
  }
  accepting = false;
  run(dir, undefined);
}
