/**
 * scripts/setup-temporal against fake PATHs: which Temporal CLI it links, and when it builds one.
 * Every cache and link path is a temporary folder, and `go` is always a fake: nothing here touches
 * ~/.cache/sparkify-lake or the checkout's .tools, and no real build runs.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const SCRIPT = resolve(__dirname, '../scripts/setup-temporal');
/** What the script and the fakes below call; linked into each sandbox's only PATH entry. */
const SYSTEM_TOOLS = ['bash', 'sh', 'mkdir', 'ln', 'readlink', 'mv', 'rm', 'timeout', 'chmod', 'cat'];

function which(tool: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, tool))
    .find((p) => existsSync(p));
}

const BASH = which('bash')!;

interface Sandbox {
  dir: string;
  /** The only system directory on PATH: the tools above, and never a real temporal or go. */
  system: string;
  /** A directory for fakes, first on PATH. */
  fakes: string;
  cache: string;
  toolsBin: string;
  link: string;
  goLog: string;
}

let sandboxes: string[] = [];
afterEach(() => {
  for (const dir of sandboxes) rmSync(dir, { recursive: true, force: true });
  sandboxes = [];
});

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'sparkify-setup-'));
  sandboxes.push(dir);
  const system = join(dir, 'system');
  const fakes = join(dir, 'fakes');
  mkdirSync(system);
  mkdirSync(fakes);
  for (const tool of SYSTEM_TOOLS) {
    const found = which(tool);
    if (found) symlinkSync(found, join(system, tool));
  }
  const toolsBin = join(dir, 'tools-bin');
  return {
    dir,
    system,
    fakes,
    cache: join(dir, 'cache'),
    toolsBin,
    link: join(toolsBin, 'temporal'),
    goLog: join(dir, 'go-args.txt'),
  };
}

function executable(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

/** A `temporal` that prints the given version line, as the real CLI does. */
function fakeTemporal(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  return executable(
    join(dir, 'temporal'),
    `#!/bin/sh\necho "temporal version ${version} (Server 1.29.1, UI 2.42.1)"\n`,
  );
}

/** A `go` that must not be called. */
function forbiddenGo(s: Sandbox): void {
  executable(join(s.fakes, 'go'), '#!/bin/sh\necho "FAKE GO CALLED: no build was expected" >&2\nexit 97\n');
}

/**
 * A `go` that records its arguments and, like `go install`, leaves a binary in $GOBIN: a stub
 * CLI reporting whatever version the -X ldflag stamped (0.0.0-DEV without one, as the real one).
 */
function recordingGo(s: Sandbox): void {
  executable(
    join(s.fakes, 'go'),
    `#!/bin/sh
printf '%s\\n' "$@" > '${s.goLog}'
version=0.0.0-DEV
for arg in "$@"; do
  case $arg in *temporalcli.Version=*) version=\${arg##*temporalcli.Version=} ;; esac
done
printf '#!/bin/sh\\necho "temporal version %s (Server 1.29.1, UI 2.42.1)"\\n' "$version" > "$GOBIN/temporal"
chmod +x "$GOBIN/temporal"
`,
  );
}

function setupTemporal(s: Sandbox, env: Record<string, string> = {}, path = [s.fakes, s.system]) {
  const r = spawnSync(BASH, [SCRIPT], {
    encoding: 'utf8',
    cwd: s.dir,
    env: {
      PATH: path.join(delimiter),
      HOME: s.dir,
      TMPDIR: s.dir,
      SPARKIFY_CACHE_DIR: s.cache,
      SPARKIFY_TOOLS_BIN: s.toolsBin,
      ...env,
    },
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr };
}

const linked = (s: Sandbox) => (existsSync(s.link) ? readlinkSync(s.link) : undefined);

test('a temporal 1.5 or later on PATH is linked, and no build happens', () => {
  const s = sandbox();
  const cli = fakeTemporal(join(s.dir, 'usr-local-bin'), '1.6.0');
  forbiddenGo(s);
  const path = [s.fakes, join(s.dir, 'usr-local-bin'), s.system];
  const r = setupTemporal(s, {}, path);
  expect(r).toMatchObject({ status: 0, stderr: '' });
  expect(r.stdout).toContain(`${cli} (version 1.6.0, found on PATH), linked at ${s.link}`);
  expect(linked(s)).toBe(cli);

  // Set-up is quiet when everything is in place.
  expect(setupTemporal(s, {}, path)).toMatchObject({ status: 0, stdout: '', stderr: '' });
});

test('an older CLI on PATH is refused and the pinned CLI is built with Go, stamped with its version', () => {
  const s = sandbox();
  fakeTemporal(s.fakes, '1.4.0');
  recordingGo(s);
  // A build from before version stamping: reports 0.0.0-DEV, and must not be reused.
  fakeTemporal(s.cache, '0.0.0-DEV');
  executable(join(s.cache, 'temporal-v1.5.1'), readFileSync(join(s.cache, 'temporal'), 'utf8'));

  const r = setupTemporal(s);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain(`not using the temporal on PATH: ${join(s.fakes, 'temporal')} is version 1.4.0`);
  const args = readFileSync(s.goLog, 'utf8').trim().split('\n');
  expect(args).toEqual([
    'install',
    '-ldflags',
    '-X github.com/temporalio/cli/temporalcli.Version=1.5.1',
    'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  ]);
  const cached = join(s.cache, 'temporal-v1.5.1-stamped');
  expect(linked(s)).toBe(cached);
  expect(spawnSync(s.link, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^temporal version 1\.5\.1 /);

  // The build is cached by version: the next run links it without Go, quietly.
  forbiddenGo(s);
  rmSync(s.link);
  const again = setupTemporal(s);
  expect(again).toMatchObject({ status: 0, stderr: '' });
  expect(again.stdout).toContain('built with Go');
  expect(linked(s)).toBe(cached);
});

test('a build that does not report its version fails instead of caching it', () => {
  const s = sandbox();
  recordingGo(s);
  // A go that ignores -ldflags: the binary says 0.0.0-DEV.
  const go = readFileSync(join(s.fakes, 'go'), 'utf8').replace('version=${arg##*temporalcli.Version=}', ':');
  executable(join(s.fakes, 'go'), go);
  const r = setupTemporal(s);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/reports version '0\.0\.0-DEV'.*-ldflags -X github\.com\/temporalio\/cli/);
  expect(existsSync(join(s.cache, 'temporal-v1.5.1-stamped'))).toBe(false);
  expect(linked(s)).toBeUndefined();
});

test('with neither Go nor a usable CLI, set-up fails and names both ways out', () => {
  const s = sandbox();
  fakeTemporal(s.fakes, '1.4.0');
  const r = setupTemporal(s);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`found ${join(s.fakes, 'temporal')} is version 1.4.0`);
  expect(r.stderr).toMatch(
    /Temporal CLI 1\.5 or later on PATH \(install it: https:\/\/docs\.temporal\.io\/cli\)/,
  );
  expect(r.stderr).toMatch(/install Go/);
  expect(linked(s)).toBeUndefined();
});

test("the project's own link directory on PATH does not count as a CLI on PATH", () => {
  const s = sandbox();
  fakeTemporal(s.toolsBin, '1.6.0');
  const r = setupTemporal(s, {}, [s.toolsBin, s.fakes, s.system]);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/install Go/);
});

test('SPARKIFY_TEMPORAL_CLI forces a binary, after checking that it runs and is 1.5 or later', () => {
  const s = sandbox();
  fakeTemporal(s.fakes, '1.6.0');
  forbiddenGo(s);
  const forced = fakeTemporal(join(s.dir, 'opt'), '1.5.0');
  const r = setupTemporal(s, { SPARKIFY_TEMPORAL_CLI: forced });
  expect(r).toMatchObject({ status: 0, stderr: '' });
  expect(r.stdout).toContain(`${forced} (version 1.5.0, from SPARKIFY_TEMPORAL_CLI)`);
  expect(linked(s)).toBe(forced);

  const old = fakeTemporal(join(s.dir, 'old'), '1.4.2');
  const notCli = executable(join(s.dir, 'not-a-cli'), '#!/bin/sh\necho hello\n');
  for (const [cli, message] of [
    [old, `${old} is version 1.4.2; 1.5 or later is needed`],
    [join(s.dir, 'missing'), `${join(s.dir, 'missing')} does not exist`],
    [notCli, `\`${notCli} --version\` did not print a Temporal CLI version (it printed: hello)`],
  ] as const) {
    const bad = setupTemporal(s, { SPARKIFY_TEMPORAL_CLI: cli });
    expect({ cli, status: bad.status }).toEqual({ cli, status: 1 });
    expect(bad.stderr).toContain(`SPARKIFY_TEMPORAL_CLI: ${message}`);
    expect(bad.stderr).toContain('https://docs.temporal.io/cli');
    expect(linked(s)).toBe(forced);
  }
});
