'use strict';
// Kills a process group when the process that started it dies, however it dies (SIGKILL and OOM
// included, where no `exit` handler runs). The Temporal CLI cannot watch a pipe from its parent,
// so this small watcher does: its stdin is a pipe from that parent, and the kernel closes the pipe
// when the parent goes. The parent kills the guard itself after a normal stop. Plain CommonJS so
// `node` starts it without tsx.
//
// usage: node orphan-guard.js <pgid> <marker> [signal]
// On end of stdin: <signal> (SIGKILL by default) to process group <pgid> if its leader's command line still contains
// <marker> (the pid may have been reused once the group ended), then exit.

const fs = require('node:fs');

const pgid = Number.parseInt(process.argv[2] ?? '', 10);
const marker = process.argv[3] ?? '';
const signal = process.argv[4] ?? 'SIGKILL';
if (!Number.isInteger(pgid) || pgid <= 1 || marker === '' || !/^SIG[A-Z]+$/.test(signal)) {
  process.stderr.write('usage: orphan-guard.js <pgid> <marker> [signal]\n');
  process.exit(64);
}

function leaderIsOurs() {
  try {
    return fs.readFileSync(`/proc/${pgid}/cmdline`, 'utf8').includes(marker);
  } catch {
    // No /proc (macOS): the group is young enough that its pid has not been reused.
    return !fs.existsSync('/proc/self/cmdline');
  }
}

function killGroup() {
  if (leaderIsOurs()) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // already gone
    }
  }
  process.exit(0);
}

// Terminal signals do not reach the guard (it runs in its own session); anything else that
// stops it politely still takes the group with it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, killGroup);
process.stdin.on('end', killGroup);
process.stdin.on('error', killGroup);
process.stdin.resume();
