import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  buildGraph,
  graph,
  GraphError,
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
  writes: [{ path: key, scope: 'partition' }],
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
    ['songs+', ['songs', 'songplays']],
    ['+songs+', ['songs', 'songplays']],
    ['*', ['songs', 'artists', 'users', 'time', 'songplays']],
    ['time, users', ['users', 'time']],
    ['songs,songs+', ['songs', 'songplays']],
  ])('%s selects %j in dependency order', (selection, expected) => {
    expect(selectAssets(graph, selection)).toEqual(expected);
  });

  test('a partial multi-asset runs only the selected part of its step', () => {
    expect(planSteps(graph, selectAssets(graph, 'artists'))).toEqual([
      { key: 'song_tables', assets: ['artists'], deps: [], partitioning: 'unpartitioned' },
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
    const clash = [spec('a', []), { ...spec('b', []), writes: [{ path: 'a', scope: 'table' as const }] }];
    expect(() => buildGraph(clash)).toThrow(/"a" is written by both "a" and "b"/);
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
