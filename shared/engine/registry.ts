import { ValidationError } from '../errors.js';
import { flatEngine } from './flat.js';
import { hnswEngine } from './hnsw.js';
import { ENGINE_NAMES, type EngineName, type IndexEngine } from './types.js';

const ENGINES: Record<EngineName, IndexEngine> = { hnsw: hnswEngine, flat: flatEngine };

export function getEngine(name: string, field = 'index.engine'): IndexEngine {
  if (!(ENGINE_NAMES as readonly string[]).includes(name)) {
    throw new ValidationError(`${field} must be one of ${ENGINE_NAMES.join(', ')}, got "${name}"`, { field });
  }
  return ENGINES[name as EngineName];
}
