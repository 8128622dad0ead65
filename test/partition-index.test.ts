import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { addDays, daysIn } from '../assets';
import { songDataFingerprint } from '../lake/fingerprints';
import { statusFromIndex } from '../lake/index-status';
import { writeRun, type RunRecord } from '../lake/manifests';
import {
  generationKey,
  indexRuns,
  IndexReader,
  mergeEntry,
  rebuildIndex,
  toIndexRecord,
  updateScope,
  type IndexEntry,
} from '../lake/partition-index';
import { readLakeStatus } from '../lake/status';
import { openLake, type Lake } from '../lake/store';
import { motoS3, startMoto, type Moto } from './helpers/moto';

jest.setTimeout(60_000);

let moto: Moto;
let s3: S3Client;
let tmpRoot: string;
let counter = 0;

beforeAll(async () => {
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sparkify-index-test-'));
  moto = await startMoto();
  s3 = motoS3(moto.endpoint);
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  await fs.rm(tmpRoot, { recursive: true, force: true });
});

const backends: { name: string; fresh(): Promise<Lake> }[] = [
  { name: 'local', fresh: async () => openLake(path.join(tmpRoot, `lake-${++counter}`)) },
  {
    name: 's3 (moto)',
    async fresh() {
      const bucket = `index-${++counter}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return openLake(`s3://${bucket}/lake`, { s3 });
    },
  },
];

const CODE = 'feedfacecafe0001';

function run(day: string, patch: Partial<RunRecord> = {}): RunRecord {
  return {
    status: 'materialized',
    at: `2026-01-01T00:00:00.000Z`,
    workflowId: 'wf',
    runKind: 'manual',
    step: 'time',
    stepId: 's-1',
    codeVersion: CODE,
    range: { start: day, end: addDays(day, 1) },
    rows: 10,
    dataVersion: `v-${day}`,
    inputs: { log_data: 'absent' },
    ...patch,
  };
}

const entry = (r: RunRecord): IndexEntry => ({ last: toIndexRecord(r) });

describe('merging entries', () => {
  const ok1 = entry(run('2018-11-01', { at: '2026-01-01T00:00:01.000Z', dataVersion: 'a' }));
  const fail2 = entry(
    run('2018-11-01', { at: '2026-01-01T00:00:02.000Z', status: 'failed', reason: 'boom' }),
  );
  const ok3 = entry(run('2018-11-01', { at: '2026-01-01T00:00:03.000Z', dataVersion: 'c' }));

  test('a failure after a success keeps the success; a later success replaces both', () => {
    const failed = mergeEntry(ok1, fail2);
    expect(failed.last.status).toBe('failed');
    expect(failed.success?.dataVersion).toBe('a');
    expect(mergeEntry(failed, ok3)).toEqual({ last: ok3.last });
  });

  test('commutative, associative and idempotent: any order of updates gives one state', () => {
    const orders = [
      [ok1, fail2, ok3],
      [ok3, fail2, ok1],
      [fail2, ok3, ok1],
      [fail2, ok1, ok1, fail2],
    ];
    const fold = (xs: IndexEntry[]) =>
      xs.reduce<IndexEntry | undefined>((a, b) => mergeEntry(a, b), undefined);
    expect(fold(orders[0]!)).toEqual({ last: ok3.last });
    expect(fold(orders[1]!)).toEqual(fold(orders[0]!));
    expect(fold(orders[2]!)).toEqual(fold(orders[0]!));
    expect(fold(orders[3]!)).toEqual({ last: fail2.last, success: ok1.last });
    // Nothing new: the same object back, which is how a writer knows it has nothing to write.
    const state = fold(orders[3]!)!;
    expect(mergeEntry(state, ok1)).toBe(state);
    expect(mergeEntry(state, { last: { ...fail2.last } })).toBe(state);
  });
});

describe.each(backends)('the partition index on $name', (backend) => {
  let lake: Lake;
  beforeEach(async () => {
    lake = await backend.fresh();
  });

  const scopeFiles = async (asset: string, scope: string) =>
    (await lake.list(`_index/${asset}/${scope}/`)).map((o) => path.basename(o.key));

  test('recorded runs read back by asset and partition; old generations are pruned', async () => {
    for (const day of daysIn({ start: '2018-11-01', end: '2018-11-06' })) {
      await indexRuns(lake, [{ asset: 'time', partition: day, run: run(day) }]);
    }
    await indexRuns(lake, [
      { asset: 'songs', partition: 'all', run: run('2018-11-01', { step: 'song_tables' }) },
    ]);
    const index = await new IndexReader(lake).read(['time', 'songs', 'users']);
    expect([...index.get('time')!.keys()].sort()).toEqual(daysIn({ start: '2018-11-01', end: '2018-11-06' }));
    expect(index.get('time')!.get('2018-11-03')!.last.dataVersion).toBe('v-2018-11-03');
    expect(index.get('songs')!.get('all')!.last.step).toBe('song_tables');
    expect(index.get('users')!.size).toBe(0);
    // Five updates: generations 4 and 5 are kept, the rest deleted.
    expect(await scopeFiles('time', '2018')).toEqual(['0000000004.json', '0000000005.json']);
  });

  test('concurrent writers of one asset-year lose no update', async () => {
    const days = daysIn({ start: '2018-11-01', end: '2018-11-17' });
    // 16 writers at once, each a different day, plus 4 that re-record a day later in time.
    await Promise.all([
      ...days.map((day) => indexRuns(lake, [{ asset: 'songplays', partition: day, run: run(day) }])),
      ...days.slice(0, 4).map((day) =>
        indexRuns(lake, [
          {
            asset: 'songplays',
            partition: day,
            run: run(day, { at: '2026-01-02T00:00:00.000Z', status: 'failed', reason: `late ${day}` }),
          },
        ]),
      ),
    ]);
    const index = (await new IndexReader(lake).read(['songplays'])).get('songplays')!;
    expect([...index.keys()].sort()).toEqual(days);
    for (const day of days.slice(0, 4)) {
      expect(index.get(day)).toMatchObject({
        last: { status: 'failed', reason: `late ${day}` },
        success: { dataVersion: `v-${day}` },
      });
    }
    expect(index.get(days[10]!)!.last.status).toBe('materialized');
    expect((await scopeFiles('songplays', '2018')).length).toBeLessThanOrEqual(2);
  });

  test('a writer whose base was deleted under it merges again on top of the current generation', async () => {
    await indexRuns(lake, [{ asset: 'time', partition: '2018-01-01', run: run('2018-01-01') }]);
    // The slow writer reads generation 1, then stalls before it creates generation 2 …
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let stalls = 1;
    const slow: Lake = Object.create(lake) as Lake;
    slow.create = async (key, body) => {
      if (stalls-- > 0) await stalled;
      return lake.create(key, body);
    };
    const slowWrite = updateScope(slow, 'time', '2018', { '2018-06-30': entry(run('2018-06-30')) });
    await new Promise((r) => setTimeout(r, 100));
    // … while others go to generation 5 and delete 1 to 3.
    for (const day of ['2018-02-01', '2018-03-01', '2018-04-01', '2018-05-01']) {
      await indexRuns(lake, [{ asset: 'time', partition: day, run: run(day) }]);
    }
    expect(await lake.exists(generationKey('time', '2018', 2))).toBe(false);
    release();
    await slowWrite;
    const index = (await new IndexReader(lake).read(['time'])).get('time')!;
    expect([...index.keys()].sort()).toEqual([
      '2018-01-01',
      '2018-02-01',
      '2018-03-01',
      '2018-04-01',
      '2018-05-01',
      '2018-06-30',
    ]);
    // It re-created the deleted generation 2, saw 5 above it and wrote 6; 2 is cleaned up.
    expect(await scopeFiles('time', '2018')).toEqual(['0000000005.json', '0000000006.json']);
  });

  test('a rebuild from manifests matches what the activities index, and runs safely beside them', async () => {
    const days = daysIn({ start: '2018-12-28', end: '2019-01-04' });
    for (const day of days) {
      await writeRun(lake, 'time', day, run(day));
      if (day.endsWith('31'))
        await writeRun(
          lake,
          'time',
          day,
          run(day, { status: 'failed', at: '2026-02-01T00:00:00.000Z', reason: 'x' }),
        );
    }
    await rebuildIndex(lake, { assets: ['time'] });
    const rebuilt = (await new IndexReader(lake).read(['time'])).get('time')!;
    expect([...rebuilt.keys()].sort()).toEqual(days);
    expect(rebuilt.get('2018-12-31')).toMatchObject({
      last: { status: 'failed' },
      success: { status: 'materialized' },
    });

    // Activities recording while a rebuild runs: both land.
    const later = run('2019-01-02', { at: '2026-03-01T00:00:00.000Z', dataVersion: 'newer' });
    await Promise.all([
      rebuildIndex(lake, { assets: ['time'] }),
      (async () => {
        await writeRun(lake, 'time', '2019-01-02', later);
        await indexRuns(lake, [{ asset: 'time', partition: '2019-01-02', run: later }]);
      })(),
    ]);
    const after = (await new IndexReader(lake).read(['time'])).get('time')!;
    expect(after.get('2019-01-02')!.last.dataVersion).toBe('newer');
    expect(await lake.exists('_index/_meta.json')).toBe(true);
  });
});

test('states from the index equal the states status reads from the manifests, reasons included', async () => {
  const lake = openLake(path.join(tmpRoot, 'agree-lake'));
  const raw = openLake(path.join(tmpRoot, 'agree-raw'));
  await raw.write('log_data/2018/11/2018-11-03-events.json', '{}\n');
  const songData = await songDataFingerprint(raw);
  const base = run('2018-11-01', { range: { start: '2018-11-01', end: '2018-11-05' } });
  const songs = { ...base, step: 'song_tables', inputs: { song_data: songData }, dataVersion: 'aaaa' };
  const record = async (asset: string, partition: string, r: RunRecord) => {
    await writeRun(lake, asset, partition, r);
    await indexRuns(lake, [{ asset, partition, run: r }]);
  };
  await record('songs', 'all', songs);
  await record('artists', 'all', { ...songs, dataVersion: 'bbbb' });
  await record('users', '2018-11-01', { ...base, dataVersion: 'cccc' });
  await record('users', '2018-11-02', { ...base, dataVersion: 'c2', codeVersion: 'otherversion0000' });
  const upstream = { songs: 'aaaa', artists: 'bbbb', users: 'cccc' };
  await record('songplays', '2018-11-01', { ...base, upstream });
  await record('songplays', '2018-11-02', { ...base, status: 'failed', reason: 'boom' });
  await record('time', '2018-11-03', base); // log_data for the day changed since
  await record('songs', 'all', { ...songs, dataVersion: 'dddd', at: '2026-01-05T00:00:00.000Z' });

  const days = daysIn({ start: '2018-11-01', end: '2018-11-05' });
  const { cells, inputs } = await readLakeStatus(lake, raw, { days, codeVersion: CODE });
  const index = await new IndexReader(lake).read(['songs', 'artists', 'users', 'time', 'songplays']);
  const fromIndex = statusFromIndex(index, { days, codeVersion: CODE, inputs });
  const brief = (cs: typeof cells) => cs.map((c) => `${c.asset} ${c.partition} ${c.state} ${c.reason ?? ''}`);
  expect(brief(fromIndex)).toEqual(brief(cells));
  expect(brief(fromIndex)).toEqual(
    expect.arrayContaining([
      'songplays 2018-11-01 stale upstream songs changed (data version aaaa → dddd)',
      'songplays 2018-11-02 failed boom',
      'users 2018-11-02 stale code changed: built with otherversion0000, now feedfacecafe0001',
      'time 2018-11-03 stale log_data for 2018-11-03 changed since it was built',
      'time 2018-11-04 missing never materialized',
    ]),
  );
});
