/**
 * The Dockerfile as data, for tests that check it without a Docker engine: its instructions, its
 * stages, what each stage copies from where, and the image's command. test/compose.test.ts checks
 * it against the code; test/compiled-worker.test.ts lays out the final stage's files from it and
 * runs the image's command on them.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const ROOT = path.resolve(__dirname, '../..');
const StringList = z.array(z.string());

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  /** `AS <name>`, if any. */
  name?: string;
  instructions: Instruction[];
}

/** One COPY or ADD: its sources (from the context, another stage or a URL) and destination. */
export interface Copy {
  op: 'COPY' | 'ADD';
  /** `--from=<stage>`; undefined for the build context (or a URL, for ADD). */
  from?: string;
  sources: string[];
  dest: string;
  /** The other `--flag=value`s (e.g. checksum, chmod). */
  flags: Record<string, string>;
}

export function dockerfileInstructions(file = path.join(ROOT, 'Dockerfile')): Instruction[] {
  const logical = readFileSync(file, 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return logical.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), args: m[2]! };
  });
}

export function stages(all = dockerfileInstructions()): Stage[] {
  const out: Stage[] = [];
  for (const i of all) {
    if (i.op === 'FROM') {
      const m = /\bAS\s+(\S+)\s*$/i.exec(i.args);
      out.push({ ...(m ? { name: m[1]! } : {}), instructions: [i] });
    } else if (out.length > 0) {
      out.at(-1)!.instructions.push(i);
    }
  }
  return out;
}

export function stage(name: string): Stage {
  const s = stages().find((x) => x.name === name);
  if (!s) throw new Error(`the Dockerfile has no stage ${name}`);
  return s;
}

/** The instructions of the last stage: what the image is. */
export function finalStage(): Instruction[] {
  return stages().at(-1)!.instructions;
}

export function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return StringList.safeParse(parsed).data;
  } catch {
    return undefined;
  }
}

const clean = (p: string) => p.replace(/^\.\//, '').replace(/\/$/, '');

/** The COPY and ADD instructions of `instructions`, with `./` and trailing slashes dropped. */
export function copies(instructions: Instruction[]): Copy[] {
  return instructions
    .filter((i) => i.op === 'COPY' || i.op === 'ADD')
    .map((i) => {
      const words = execForm(i.args) ?? i.args.split(/\s+/);
      const flags: Record<string, string> = {};
      for (const w of words.filter((x) => x.startsWith('--'))) {
        const [k, ...v] = w.slice(2).split('=');
        flags[k!] = v.join('=');
      }
      const paths = words.filter((x) => !x.startsWith('--'));
      const { from, ...rest } = flags;
      return {
        op: i.op as 'COPY' | 'ADD',
        ...(from !== undefined ? { from } : {}),
        sources: paths.slice(0, -1).map((p) => (/^https?:/.test(p) ? p : clean(p))),
        dest: paths.at(-1)!,
        flags: rest,
      };
    });
}

/** Sources a stage copies from the build context (not --from another stage, not URLs). */
export function contextPaths(instructions: Instruction[]): string[] {
  return copies(instructions)
    .filter((c) => c.op === 'COPY' && c.from === undefined)
    .flatMap((c) => c.sources);
}

/** ENTRYPOINT + CMD of the image, in exec form. */
export function imageCommand(): string[] {
  const cmd = finalStage()
    .filter((i) => i.op === 'CMD')
    .at(-1);
  const entrypoint = finalStage()
    .filter((i) => i.op === 'ENTRYPOINT')
    .at(-1);
  return [
    ...(entrypoint ? (execForm(entrypoint.args) ?? []) : []),
    ...(cmd ? (execForm(cmd.args) ?? []) : []),
  ];
}

/** `ENV K=V` (and `ENV K V`) of the final stage, in order. */
export function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of finalStage().filter((x) => x.op === 'ENV')) {
    const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(i.args);
    const sp = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(i.args);
    const [, k, v] = eq ?? sp ?? [];
    if (k !== undefined) env[k] = v!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

export function workdir(): string {
  return (
    finalStage()
      .filter((i) => i.op === 'WORKDIR')
      .at(-1)?.args ?? '/'
  );
}
