import { recordSuite } from '../lib/experiments';
import { gatherFacts, writeLabReport, mapFacts, writeMapFacts } from '../lib/report';
import { loadCifar10 } from '../lib/data';
import { checkpointPath, loadNetFromStateFile } from '../lib/train';
import { initBackend } from '../lib/runtime';
(async () => {
  initBackend();
  const r = recordSuite('paired', {
    runsDir: '/work/suite/results/paired/runs',
    outDir: '/tmp/rec/paired',
    command: 'dev',
    commit: 'dev',
  });
  console.log('recorded', r.recorded);
  const { net, norm } = loadNetFromStateFile(checkpointPath('/work/suite/results/paired/runs/dynamic-s5', 'best'));
  writeMapFacts('/tmp/rec/paired', mapFacts(net, norm, loadCifar10('test'), 'recorded', 'dynamic-s5'));
  const facts = gatherFacts({ mode: 'recorded', recordedDir: '/tmp/rec' });
  console.log(await writeLabReport(facts, { outDir: '/tmp/lr', pdf: true }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
