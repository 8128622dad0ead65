import { buildGraph } from './derive';
import { ASSETS } from './graph';

export * from './derive';
export {
  ASSETS,
  AssetKeySchema,
  ASSET_KEY_PATTERN,
  DECLARATION,
  type AssetSpec,
  type CheckSpec,
  type WriteSpec,
} from './graph';

/** The project's graph, validated once at import: a broken declaration fails fast everywhere. */
export const graph = buildGraph(ASSETS);
export * from './partitions';
