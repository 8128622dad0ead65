/** The user base: who they are, pre-rendered into the JSON fragments every event repeats. */
import { logString } from './json';
import { Rng } from './prng';
import { FEMALE_NAMES, LAST_NAMES, MALE_NAMES, METROS, USER_AGENTS } from './vocab';

export const FREE = 0;
export const PAID = 1;

/**
 * Per-user fragments in key order, each ending with the comma that follows it. Kept as
 * parallel arrays rather than objects: the event loop reads them millions of times.
 */
export interface Users {
  count: number;
  ids: string[];
  /** `"firstName":…,"gender":…,` */
  nameGender: string[];
  /** `"lastName":…,` */
  lastName: string[];
  /** `"location":…,` */
  location: string[];
  /** `"registration":…,` */
  registration: string[];
  /** `"userAgent":…,"userId":"…"}` */
  agentId: string[];
  initialLevel: Uint8Array;
}

/** The fragments of an event with no user attached (Guest, Logged Out), as the sample has them. */
export const ANONYMOUS = {
  nameGender: '"firstName":null,"gender":null,',
  lastName: '"lastName":null,',
  location: '"location":null,',
  registration: '"registration":null,',
  agentId: '"userAgent":null,"userId":""}',
};

export function buildUsers(seed: number, count: number, startMs: number): Users {
  const rng = new Rng(seed, 2);
  const users: Users = {
    count,
    ids: [],
    nameGender: [],
    lastName: [],
    location: [],
    registration: [],
    agentId: [],
    initialLevel: new Uint8Array(count),
  };
  for (let i = 0; i < count; i++) {
    const id = String(i + 1);
    const female = rng.chance(0.55);
    const first = female ? rng.pick(FEMALE_NAMES) : rng.pick(MALE_NAMES);
    // Registered up to 90 days before the data starts; eventsim writes it as a float.
    const registered = startMs - rng.range(3_600_000, 90 * 86_400_000);
    users.ids.push(id);
    users.nameGender.push(`"firstName":${logString(first)},"gender":"${female ? 'F' : 'M'}",`);
    users.lastName.push(`"lastName":${logString(rng.pick(LAST_NAMES))},`);
    users.location.push(`"location":${logString(rng.pick(METROS))},`);
    users.registration.push(`"registration":${registered}.0,`);
    users.agentId.push(`"userAgent":${logString(rng.pick(USER_AGENTS))},"userId":"${id}"}`);
    users.initialLevel[i] = rng.chance(0.3) ? PAID : FREE;
  }
  return users;
}
