// Atomic writes when the disk fills up (issue #14): the failure is injected at the fs call (a
// write that stores part of the data, then fails with ENOSPC, as a full disk does); the error
// must name the file and say the disk is full, and the earlier file must stay as it was.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, type WriteIo } from '../lib/formats/atomic-file';
import { readSafetensors, writeSafetensors, type TensorRecord } from '../lib/formats/safetensors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-atomic-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An errno error as Node raises it. */
function errno(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} failed`), { code, syscall });
}

/** Real fs calls, except that the data write stores `room` bytes and then fails with `code`. */
function diskWithRoom(room: number, code = 'ENOSPC'): WriteIo {
  return {
    ...fs,
    writeFileSync: (fd: number, data: string | Uint8Array) => {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      fs.writeSync(fd, bytes, 0, Math.min(room, bytes.length));
      throw errno(code, 'write');
    },
  };
}

/** Files in `dir` that look like temporary files. */
const leftovers = () => fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'));

describe('writeFileAtomic on a full disk', () => {
  it('names the file, says the disk is full, keeps the earlier file and leaves no temporary file', () => {
    const file = path.join(dir, 'epochs.parquet');
    writeFileAtomic(file, 'the earlier contents');
    expect(() => writeFileAtomic(file, 'x'.repeat(10_000), diskWithRoom(100))).toThrow(
      `cannot write ${file}: the disk is full (ENOSPC). Any earlier epochs.parquet is unchanged; free some space and run again.`,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe('the earlier contents');
    expect(leftovers()).toEqual([]);
  });

  it('also when the disk fills at fsync, and for a quota (EDQUOT); other errors name the file too', () => {
    const file = path.join(dir, 'config.json');
    writeFileAtomic(file, '{"old": true}');
    const failingSync: WriteIo = {
      ...fs,
      fsyncSync: () => {
        throw errno('ENOSPC', 'fsync');
      },
    };
    expect(() => writeFileAtomic(file, '{"new": true}', failingSync)).toThrow(
      new RegExp(`cannot write ${file}: the disk is full \\(ENOSPC\\)`),
    );
    expect(() => writeFileAtomic(file, '{"new": true}', diskWithRoom(3, 'EDQUOT'))).toThrow(
      /the disk is full \(EDQUOT\)/,
    );
    const denied = {
      ...fs,
      renameSync: () => {
        throw errno('EACCES', 'rename');
      },
    } as WriteIo;
    const err = (() => {
      try {
        writeFileAtomic(file, '{"new": true}', denied);
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
    })();
    expect(err?.message).toMatch(
      new RegExp(`^cannot write ${file}: EACCES: rename failed\\. Any earlier config\\.json is unchanged\\.$`),
    );
    expect(err?.code).toBe('EACCES');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"old": true}');
    expect(leftovers()).toEqual([]);
  });

  it('a safetensors write (checkpoints, model states) says the same, and the earlier file still verifies', () => {
    const file = path.join(dir, 'last.safetensors');
    const tensors = (v: number): Record<string, TensorRecord> => ({
      w: { dtype: 'F32', shape: [256], data: new Float32Array(256).fill(v) },
    });
    writeSafetensors(file, tensors(1), { epoch: '1' });
    expect(() => writeSafetensors(file, tensors(2), { epoch: '2' }, diskWithRoom(500))).toThrow(
      new RegExp(`cannot write ${file}: the disk is full \\(ENOSPC\\)\\. Any earlier last\\.safetensors is unchanged`),
    );
    const kept = readSafetensors(file); // verifies its whole-file checksum
    expect(kept.checksummed).toBe(true);
    expect(kept.metadata.epoch).toBe('1');
    expect((kept.tensors.w.data as Float32Array)[255]).toBe(1);
    expect(leftovers()).toEqual([]);
  });
});
