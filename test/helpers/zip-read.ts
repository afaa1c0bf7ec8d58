// A ZIP archive read back by an independent reader, Python's zipfile: each entry's name, bytes,
// Unix mode, compression and date as Python sees them (testzip checks every CRC first).
import { spawnSync } from 'child_process';

export interface ReadEntry {
  name: string;
  data: Buffer;
  /** The Unix mode from the external attributes, e.g. 0o100755. */
  mode: number;
  /** 0 stored, 8 deflated. */
  method: number;
  /** [year, month, day, hour, minute, second], local time. */
  dateTime: number[];
}

const READER = `
import base64, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit('bad CRC: ' + bad)
    print(json.dumps([
        {'name': i.filename, 'data': base64.b64encode(z.read(i)).decode(), 'mode': i.external_attr >> 16,
         'method': i.compress_type, 'dateTime': list(i.date_time)}
        for i in z.infolist()]))
`;

export function readZipWithPython(file: string): ReadEntry[] {
  const r = spawnSync('python3', ['-c', READER, file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python3 zipfile could not read ${file}: ${r.stderr || r.error?.message}`);
  return (JSON.parse(r.stdout) as (Omit<ReadEntry, 'data'> & { data: string })[]).map((e) => ({
    ...e,
    data: Buffer.from(e.data, 'base64'),
  }));
}

/** `unzip -t`: Info-ZIP's own test of every entry; its exit status and output. */
export function unzipTest(file: string): { status: number | null; output: string } {
  const r = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
