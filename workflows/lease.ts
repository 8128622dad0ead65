import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DayRange } from '../assets/partitions';
import type { SparkifyActivities } from './types';

/**
 * Leases on what steps write, e.g. users' state or some days of songplays: one workflow per lake
 * holds every grant. A run asks for what one EMR step writes — one claim per step it runs, all
 * granted together or not at all, so two runs can never each hold a part and wait for the other
 * — by update (through the requestLease activity, which starts this workflow if it is not
 * running). The update's answer says whether the request was granted at once, as it is whenever
 * nothing conflicts; a request that must wait is granted later by the `leaseGranted` signal. The
 * holder writes, then releases. Grants are first come,
 * first served: a request is granted when its claims overlap none held and none of an earlier
 * request still waiting, so a whole-table claim is never starved by a stream of small ones.
 *
 * Durable like any workflow: grants survive a killed worker and a restarted server. A lease ends
 * when its holder releases it, when its time is up, or when its holder's workflow is found closed
 * (terminated, timed out) by a periodic check.
 */

export interface LeaseHolder {
  workflowId: string;
  runId: string;
}

/** One step's claim: its lease key (the step) and the days it writes, or null for all of them. */
export interface LeaseClaim {
  key: string;
  range: DayRange | null;
}

export interface LeaseRequest {
  requestId: string;
  holder: LeaseHolder;
  claims: LeaseClaim[];
  /** Upper bound on holding it: the step's own timeout and some. */
  ttlMs: number;
  /** For people: what the holder is doing, e.g. `users 2018-11-01..2018-11-30 (materialize-all-…)`. */
  label: string;
}

export interface LeaseGrant extends LeaseRequest {
  grantedAt: number;
  expiresAt: number;
}

export interface LeaseState {
  held: LeaseGrant[];
  waiting: (LeaseRequest & { requestedAt: number })[];
}

export interface LeaseInput {
  /** Carried across continue-as-new. */
  state?: LeaseState;
  /** How often to look for holders whose workflow has closed. */
  livenessCheckMs?: number;
  /** An idle lease workflow ends after this long; the next request starts a new one. */
  idleMs?: number;
}

/** What a request learns at once: granted, or waiting behind the labels of what it conflicts with. */
export interface LeaseAnswer {
  granted: boolean;
  heldBy: string[];
}

export const acquireLeaseUpdate = defineUpdate<LeaseAnswer, [LeaseRequest]>('acquireLease');
export const releaseLeaseSignal = defineSignal<[{ requestId: string }]>('releaseLease');
/** Sent to the holder's workflow when its request is granted. */
export const leaseGrantedSignal = defineSignal<[{ requestId: string }]>('leaseGranted');
export const leaseStateQuery = defineQuery<LeaseState>('leaseState');

const checks = proxyActivities<Pick<SparkifyActivities, 'closedWorkflows'>>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 },
});

export function rangesOverlap(a: DayRange | null, b: DayRange | null): boolean {
  if (a === null || b === null) return true;
  return a.start < b.end && b.start < a.end;
}

export function claimsConflict(a: readonly LeaseClaim[], b: readonly LeaseClaim[]): boolean {
  return a.some((x) => b.some((y) => x.key === y.key && rangesOverlap(x.range, y.range)));
}

export async function lease(input: LeaseInput): Promise<void> {
  const held: LeaseGrant[] = [...(input.state?.held ?? [])];
  const waiting: LeaseState['waiting'] = [...(input.state?.waiting ?? [])];
  const livenessMs = input.livenessCheckMs ?? 60_000;
  const idleMs = input.idleMs ?? 10 * 60_000;
  let changed = true;

  const known = (id: string) =>
    held.some((g) => g.requestId === id) || waiting.some((w) => w.requestId === id);
  // Requests whose update waits for the next grant pass: one granted there is told by the
  // update's answer, not by a signal (a round trip less on every uncontended step).
  const undecided = new Set<string>();
  setHandler(acquireLeaseUpdate, async (req) => {
    // The requesting activity may be retried: the same request id is one request.
    if (!known(req.requestId)) {
      waiting.push({ ...req, requestedAt: Date.now() });
      undecided.add(req.requestId);
      changed = true;
    }
    await condition(() => !undecided.has(req.requestId));
    if (held.some((g) => g.requestId === req.requestId)) return { granted: true, heldBy: [] };
    // What it waits behind: grants held, and requests ahead of it in the queue.
    const ahead = waiting.findIndex((w) => w.requestId === req.requestId);
    const blockers = [...held, ...waiting.slice(0, Math.max(ahead, 0))];
    return {
      granted: false,
      heldBy: blockers.filter((b) => claimsConflict(b.claims, req.claims)).map((b) => b.label),
    };
  });
  setHandler(releaseLeaseSignal, ({ requestId }) => {
    const h = held.findIndex((g) => g.requestId === requestId);
    if (h >= 0) held.splice(h, 1);
    const w = waiting.findIndex((r) => r.requestId === requestId);
    if (w >= 0) waiting.splice(w, 1);
    changed = true;
  });
  setHandler(leaseStateQuery, () => ({ held, waiting }));

  const drop = (requestId: string, why: string) => {
    const i = held.findIndex((g) => g.requestId === requestId);
    if (i < 0) return;
    log.warn(`lease: releasing ${held[i]!.label} (${why})`);
    held.splice(i, 1);
  };

  for (;;) {
    // Grant, in order, whatever conflicts with nothing held and nothing asked for earlier.
    const granted: LeaseGrant[] = [];
    for (let i = 0; i < waiting.length;) {
      const req = waiting[i]!;
      const blocked =
        held.some((g) => claimsConflict(g.claims, req.claims)) ||
        waiting.slice(0, i).some((earlier) => claimsConflict(earlier.claims, req.claims));
      if (blocked) {
        i++;
        continue;
      }
      waiting.splice(i, 1);
      const now = Date.now();
      const grant: LeaseGrant = {
        requestId: req.requestId,
        holder: req.holder,
        claims: req.claims,
        ttlMs: req.ttlMs,
        label: req.label,
        grantedAt: now,
        expiresAt: now + req.ttlMs,
      };
      held.push(grant);
      granted.push(grant);
    }
    const toSignal = granted.filter((g) => !undecided.has(g.requestId));
    // Every waiting request has now been looked at: their updates can answer.
    undecided.clear();
    await Promise.all(
      toSignal.map(async (g) => {
        try {
          await getExternalWorkflowHandle(g.holder.workflowId, g.holder.runId).signal(leaseGrantedSignal, {
            requestId: g.requestId,
          });
        } catch (err) {
          // The holder is gone (closed or reset): nobody will use or release this grant.
          drop(g.requestId, `its workflow could not be told: ${(err as Error).message}`);
          changed = true;
        }
      }),
    );
    if (changed) {
      changed = false;
      continue;
    }
    // After a grant pass, so no update handler is left waiting for one. Short runs: the worker's
    // native memory grew ~25 MiB over each 4,000-event run of this workflow (bench
    // orchestration, 366 days: 274 MiB peak at 4,000 events, 245 at 1,000).
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > 1_000) {
      // A request arriving meanwhile is answered by the next pass before this run hands over.
      await condition(() => changed || allHandlersFinished());
      if (changed) continue;
      await continueAsNew<typeof lease>({ ...input, state: { held, waiting } });
    }

    if (held.length === 0 && waiting.length === 0) {
      if (!(await condition(() => changed, idleMs))) {
        await condition(() => changed || allHandlersFinished());
        if (!changed) return;
      }
      continue;
    }

    const now = Date.now();
    const nextExpiry = Math.min(...held.map((g) => g.expiresAt), now + livenessMs);
    if (await condition(() => changed, Math.max(1, nextExpiry - now))) continue;

    for (const g of [...held])
      if (g.expiresAt <= Date.now()) drop(g.requestId, `held past its ${g.ttlMs} ms`);
    if (held.length > 0) {
      const closed = new Set(await checks.closedWorkflows({ holders: held.map((g) => g.holder) }));
      for (const g of [...held]) {
        if (closed.has(`${g.holder.workflowId}/${g.holder.runId}`))
          drop(g.requestId, 'its workflow has closed');
      }
    }
    changed = true;
  }
}
