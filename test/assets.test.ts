import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  buildGraph,
  fuseSteps,
  graph,
  GraphError,
  monthsBetween,
  planSteps,
  selectAssets,
  stepLease,
  toMermaid,
  type AssetSpec,
} from '../assets';

const ASSETS = [...graph.specs.values()];

const spec = (key: string, deps: string[], step = key): AssetSpec => ({
  key,
  description: key,
  deps,
  partitioning: 'daily',
  step,
  inputs: ['log_data'],
  reads: [],
  writes: [{ store: 'lake', path: key, scope: 'partition' }],
  table: { columns: [{ name: 'id', type: 'string' }], partitionBy: [] },
  checks: [],
});

describe('the declared graph', () => {
  test('orders every dependency before its dependents', () => {
    const pos = new Map(graph.order.map((k, i) => [k, i]));
    for (const s of ASSETS) for (const d of s.deps) expect(pos.get(d)!).toBeLessThan(pos.get(s.key)!);
    expect(graph.order).toHaveLength(ASSETS.length);
  });

  test('songs and artists come from one step; songplays waits for it and for users', () => {
    const steps = planSteps(graph, graph.order);
    const songTables = steps.find((s) => s.key === 'song_tables')!;
    expect(songTables.assets).toEqual(['songs', 'artists']);
    expect([...steps.find((s) => s.key === 'songplays')!.deps].sort()).toEqual(['song_tables', 'users']);
    expect(steps.find((s) => s.key === 'time')!.deps).toEqual([]);
  });

  test('mermaid output has a node per asset and an edge per dependency', () => {
    const mermaid = toMermaid(graph);
    for (const s of ASSETS) {
      expect(mermaid).toContain(`${s.key}["`);
      for (const d of s.deps) expect(mermaid).toContain(`${d} --> ${s.key}`);
    }
  });
});

describe('leases derived from the declaration', () => {
  test('a step that rewrites a whole table leases all of it; one that writes days, its days', () => {
    expect(stepLease(graph, 'song_tables')).toEqual({ key: 'song_tables', wholeTable: true });
    // users is daily, but every run rewrites users and _state/user_current as a whole.
    expect(stepLease(graph, 'users')).toEqual({ key: 'users', wholeTable: true });
    expect(stepLease(graph, 'time')).toEqual({ key: 'time', wholeTable: false });
    expect(stepLease(graph, 'songplays')).toEqual({ key: 'songplays', wholeTable: false });
    // The warehouse: the catalog and users are upserted as a whole; days of plays by their days.
    expect(stepLease(graph, 'warehouse_catalog')).toEqual({ key: 'warehouse_catalog', wholeTable: true });
    expect(stepLease(graph, 'warehouse_users')).toEqual({ key: 'warehouse_users', wholeTable: true });
    expect(stepLease(graph, 'warehouse_plays')).toEqual({ key: 'warehouse_plays', wholeTable: false });
  });

  test('the declaration file is what the graph was built from (both languages read it)', () => {
    const file = JSON.parse(readFileSync(resolve(__dirname, '../assets/assets.json'), 'utf8')) as {
      assets: { key: string }[];
    };
    expect(file.assets.map((a) => a.key).sort()).toEqual([...graph.order].sort());
  });
});

describe('selection', () => {
  test.each([
    ['songplays', ['songplays']],
    ['+songplays', ['songs', 'artists', 'users', 'songplays']],
    ['songs+', ['songs', 'songplays', 'warehouse_songs', 'warehouse_songplays']],
    ['+songs+', ['songs', 'songplays', 'warehouse_songs', 'warehouse_songplays']],
    [
      '*',
      [
        'songs',
        'artists',
        'users',
        'time',
        'songplays',
        'warehouse_songs',
        'warehouse_artists',
        'warehouse_users',
        'warehouse_time',
        'warehouse_songplays',
      ],
    ],
    ['warehouse_songplays', ['warehouse_songplays']],
    ['time, users', ['users', 'time']],
    ['songs,songs+', ['songs', 'songplays', 'warehouse_songs', 'warehouse_songplays']],
  ])('%s selects %j in dependency order', (selection, expected) => {
    expect(selectAssets(graph, selection)).toEqual(expected);
  });

  test('a partial multi-asset runs only the selected part of its step', () => {
    expect(planSteps(graph, selectAssets(graph, 'artists'))).toEqual([
      { key: 'song_tables', assets: ['artists'], deps: [], partitioning: 'unpartitioned' },
    ]);
  });

  test('the warehouse loads after the lake tables it reads, dimensions before the plays', () => {
    const steps = planSteps(graph, selectAssets(graph, '*'));
    const of = (key: string) => steps.find((s) => s.key === key)!;
    expect(of('warehouse_catalog')).toMatchObject({
      assets: ['warehouse_songs', 'warehouse_artists'],
      deps: ['song_tables'],
      partitioning: 'unpartitioned',
    });
    expect(of('warehouse_users')).toMatchObject({ assets: ['warehouse_users'], deps: ['users'] });
    expect(of('warehouse_plays').assets).toEqual(['warehouse_time', 'warehouse_songplays']);
    expect([...of('warehouse_plays').deps].sort()).toEqual([
      'songplays',
      'time',
      'warehouse_catalog',
      'warehouse_users',
    ]);
  });

  test('an unselected upstream does not hold a step back', () => {
    expect(planSteps(graph, ['songplays'])[0]!.deps).toEqual([]);
  });

  test.each([
    ['', /empty selection/],
    [' , ', /empty selection/],
    ['plays', /unknown asset "plays".*known assets: songs, artists/],
    ['song plays', /invalid selection term "song plays"/],
    ['++songs', /invalid selection term/],
    ['../etc', /invalid selection term/],
  ])('%j is refused with a clear error', (selection, message) => {
    expect(() => selectAssets(graph, selection)).toThrow(GraphError);
    expect(() => selectAssets(graph, selection)).toThrow(message);
  });
});

describe('graph validation', () => {
  test('a cycle is refused and named', () => {
    expect(() => buildGraph([spec('a', ['c']), spec('b', ['a']), spec('c', ['b'])])).toThrow(
      /cycle through: (a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b)/,
    );
  });

  test('an unknown dependency is refused', () => {
    expect(() => buildGraph([spec('a', ['ghost'])])).toThrow(/"a" depends on unknown asset "ghost"/);
  });

  test('a duplicate key is refused', () => {
    expect(() => buildGraph([spec('a', []), spec('a', [])])).toThrow(/declared twice/);
  });

  test('a malformed declaration is refused by the schema', () => {
    expect(() => buildGraph([{ ...spec('a', []), key: 'A/../b' }])).toThrow(
      /invalid asset declaration at 0.key/,
    );
  });

  test('a path has one writer', () => {
    const clash = [
      spec('a', []),
      { ...spec('b', []), writes: [{ store: 'lake' as const, path: 'a', scope: 'table' as const }] },
    ];
    expect(() => buildGraph(clash)).toThrow(/"a" is written by both "a" and "b"/);
  });

  test('a warehouse table has one writer too, and is not the lake path of the same name', () => {
    const load = (key: string, deps: string[]) => ({
      ...spec(key, deps),
      writes: [{ store: 'warehouse', path: 'a', scope: 'partition' }],
    });
    expect(() => buildGraph([spec('a', []), load('wa', ['a'])])).not.toThrow();
    expect(() => buildGraph([spec('a', []), load('wa', ['a']), load('wb', ['a'])])).toThrow(
      /"warehouse:a" is written by both "wa" and "wb"/,
    );
    // Declared without a store, a write is the lake's.
    expect(buildGraph([{ ...spec('a', []), writes: [{ path: 'a', scope: 'table' }] }]).writer.get('a')).toBe(
      'a',
    );
    const nested = { ...load('wa', []), writes: [{ store: 'warehouse', path: 'x/y', scope: 'table' }] };
    expect(() => buildGraph([nested])).toThrow(/a warehouse write names a table/);
  });

  test('a path an asset reads must be written by something it depends on', () => {
    expect(() => buildGraph([spec('a', []), { ...spec('b', []), reads: ['a'] }])).toThrow(
      /"b" reads "a" \(written by "a"\) without depending on it/,
    );
    expect(() => buildGraph([{ ...spec('b', []), reads: ['_state/nowhere'] }])).toThrow(
      /which no asset writes/,
    );
    expect(() => buildGraph([spec('a', []), { ...spec('b', ['a']), reads: ['a'] }])).not.toThrow();
  });

  test('an unknown input or a check declared twice is refused', () => {
    expect(() => buildGraph([{ ...spec('a', []), inputs: ['tweets'] }])).toThrow(/unknown input "tweets"/);
    const check = { name: 'a.x unique', blocking: true };
    expect(() => buildGraph([{ ...spec('a', []), checks: [check, check] }])).toThrow(
      /check "a.x unique" twice/,
    );
  });

  test('assets of one step must share their partitioning', () => {
    const mixed = [
      spec('a', [], 'shared'),
      { ...spec('b', [], 'shared'), partitioning: 'unpartitioned' as const },
    ];
    expect(() => buildGraph(mixed)).toThrow(/assets of one step must share their partitioning/);
  });
});

describe('fused steps', () => {
  const steps = planSteps(graph, graph.order);
  test('daily: each unpartitioned step alone, the daily lake steps together, the warehouse loads apart', () => {
    const units = fuseSteps(steps, 'daily', graph);
    expect(units.map((u) => u.key)).toEqual([
      'song_tables',
      'warehouse_catalog',
      'users+time+songplays',
      'warehouse_users+warehouse_plays',
    ]);
    const deps = Object.fromEntries(units.map((u) => [u.key, [...u.deps].sort()]));
    expect(deps['users+time+songplays']).toEqual(['song_tables']);
    expect(deps['warehouse_users+warehouse_plays']).toEqual(['users+time+songplays', 'warehouse_catalog']);
  });

  test('none: one unit per step; all: one per store', () => {
    expect(fuseSteps(steps, 'none', graph).map((u) => u.key)).toEqual(steps.map((s) => s.key));
    expect(fuseSteps(steps, 'all', graph).map((u) => u.key)).toEqual([
      'song_tables+users+time+songplays',
      'warehouse_catalog+warehouse_users+warehouse_plays',
    ]);
  });
});

describe('month ranges', () => {
  test('both months are included, across a year end', () => {
    expect(monthsBetween('2018-11', '2019-02')).toEqual(['2018-11', '2018-12', '2019-01', '2019-02']);
    expect(monthsBetween('2019-02', '2018-11')).toEqual([]);
  });

  test.each([
    ['2018-13', '2019-01'],
    ['2018-11', '2018-1'],
  ])('%s..%s is refused, not looped over', (from, to) => {
    expect(() => monthsBetween(from, to)).toThrow(/expected a month as YYYY-MM/);
  });
});
