// The optional <Dht> section of NodeConfig: where the first node keeps its DHT entries and
// the DHT's limits.
import { children, ConfigError, int, rejectUnknown, single, text, type XNode } from './xml-helpers.js';

export interface DhtConfig {
  /** Directory of the on-disk store; undefined = beside the config file; 'memory' = no disk. */
  dataDirectory?: string;
  degree: number;
  maxValueBytes: number;
  maxTtl: number;
  /** Seconds between a holder's checks that each key's next replica point still has it. */
  repairInterval: number;
}

export const DEFAULT_DHT_CONFIG: DhtConfig = { degree: 8, maxValueBytes: 1024, maxTtl: 7 * 86400, repairInterval: 300 };

export function parseDht(node: XNode | undefined): DhtConfig {
  if (node === undefined) return { ...DEFAULT_DHT_CONFIG };
  const P = 'Dht';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['DataDirectory', 'Degree', 'MaxValueBytes', 'MaxTtl', 'RepairInterval'], P);
  const get = (name: string) => single(kids, name, `${P}/`);
  const cfg: DhtConfig = { ...DEFAULT_DHT_CONFIG };
  const dir = get('DataDirectory');
  if (dir !== undefined) {
    const d = text(dir, `${P}/DataDirectory`);
    if (d === '') throw new ConfigError(`${P}/DataDirectory`, 'must not be empty (use "memory" for no disk storage)');
    cfg.dataDirectory = d;
  }
  const deg = get('Degree');
  if (deg !== undefined) cfg.degree = int(deg, `${P}/Degree`, 1, 64);
  const mv = get('MaxValueBytes');
  if (mv !== undefined) cfg.maxValueBytes = int(mv, `${P}/MaxValueBytes`, 1, 60_000);
  const mt = get('MaxTtl');
  if (mt !== undefined) cfg.maxTtl = int(mt, `${P}/MaxTtl`, 1, 10 * 365 * 86400);
  const ri = get('RepairInterval');
  if (ri !== undefined) cfg.repairInterval = int(ri, `${P}/RepairInterval`, 1, 86400);
  return cfg;
}
