import { cpus, totalmem, platform, release, availableParallelism } from 'node:os';
import { createRequire } from 'node:module';

export interface MachineInfo {
  node: string;
  v8: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  ws: string;
  /** ws uses the native bufferutil for masking when it is installed. */
  bufferutil: boolean;
}

export function machineInfo(): MachineInfo {
  const require = createRequire(import.meta.url);
  const version = (pkg: string): string => {
    try {
      return (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      return '';
    }
  };
  return {
    node: process.version,
    v8: process.versions.v8,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    ws: version('ws'),
    bufferutil: version('bufferutil') !== '',
  };
}
