import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A class-data-sharing archive for the drivers the local EMR starts: the JVM maps the classes a
 * Spark job loads (about ten thousand) from one file instead of loading and verifying each, which
 * takes about two seconds off every step's start on this kind of machine — most of a small daily
 * run. The first step dumps the archive as it exits; later steps, and other local EMRs sharing its
 * directory (by default the machine's cache), map it. It is keyed by the JVM,
 * the Spark jars and the cluster's extra classpath, so a new Java or pyspark gets a new archive rather than a rejected one (a
 * JVM that cannot use an archive runs without it anyway).
 */
export class ClassDataArchive {
  private readonly file: string;
  private dumping: string | undefined;

  /** `dir` holds the archives; one dir shared by every local EMR on a machine dumps once. */
  constructor(
    dir: string,
    sparkSubmit: string,
    private readonly enabled = true,
    classPath: readonly string[] = [],
  ) {
    this.file = path.join(dir, `spark-${archiveKey(sparkSubmit, classPath)}.jsa`);
  }

  /** JVM options for a step about to start; `stepId` names its dump when it makes one. */
  optionsFor(stepId: string): string | undefined {
    if (!this.enabled) return undefined;
    if (fs.existsSync(this.file)) {
      try {
        // Its time is its last use: what pruneArchives goes by.
        const now = new Date();
        fs.utimesSync(this.file, now, now);
      } catch {
        // a cache this user may read and not write, or pruned this moment: mapped or run without
      }
      return `-XX:SharedArchiveFile=${this.file}`;
    }
    if (this.dumping !== undefined) return undefined; // one dump at a time; the others just run
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.dumping = `${this.file}.${stepId}.tmp`;
    return `-XX:ArchiveClassesAtExit=${this.dumping}`;
  }

  /** After a step: a complete dump becomes the archive (a failed one is thrown away). Another
   * server's dump of the same key may have landed meanwhile: the rename replaces it with an
   * equal one, and a JVM that mapped the old file keeps it. */
  stepEnded(stepId: string, succeeded: boolean): void {
    if (this.dumping === undefined || !this.dumping.endsWith(`.${stepId}.tmp`)) return;
    const dump = this.dumping;
    this.dumping = undefined;
    if (succeeded && fs.existsSync(dump)) {
      fs.renameSync(dump, this.file);
      pruneArchives(path.dirname(this.file), this.file);
    } else fs.rmSync(dump, { force: true });
  }
}

/** Archives unused this long are deleted when a new one is made (each is 100–150 MB). */
const ARCHIVE_UNUSED_MS = 30 * 24 * 3600 * 1000;

/**
 * Deletes the archives in `dir` other than `keep` that no step has mapped for
 * ARCHIVE_UNUSED_MS: each checkout's Spark, each Java and each cluster classpath has its own,
 * and a shared cache would otherwise keep every one it ever had.
 */
function pruneArchives(dir: string, keep: string): void {
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (file === keep || !/^spark-[0-9a-f]+\.jsa$/.test(name)) continue;
    try {
      if (now - fs.statSync(file).mtimeMs < ARCHIVE_UNUSED_MS) continue;
      fs.rmSync(file, { force: true });
    } catch {
      // another server pruned it first
    }
  }
}

/** The archive is valid only for the classpath it was dumped with: the cluster's extra jars count. */
function archiveKey(sparkSubmit: string, classPath: readonly string[]): string {
  const hash = createHash('sha256');
  if (classPath.length > 0) hash.update(`classpath:${classPath.join('\n')}\n`);
  // `java -version` answers on stderr.
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  hash.update(`${java.stdout ?? ''}${java.stderr ?? ''}`);
  try {
    // The archive records the classpath it was dumped with, absolute: another checkout's Spark
    // (the same jars elsewhere) needs an archive of its own, or the JVM would refuse this one.
    const jars = fs.realpathSync(path.join(path.dirname(fs.realpathSync(sparkSubmit)), '..', 'jars'));
    hash.update(`${jars}\n${fs.readdirSync(jars).sort().join('\n')}`);
  } catch {
    hash.update(sparkSubmit);
  }
  return hash.digest('hex').slice(0, 12);
}
