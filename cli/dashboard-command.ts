// `mtl dashboard RUN_DIR`: the live dashboard's page over a finished (or crashed) run
// directory, until Ctrl-C. Nothing is live; /metrics is absent (there is no run to measure).
import { errorMessage } from '../common/errors.js';
import { DashboardServer } from '../coordinator/http-server.js';
import { RunDirectoryView } from '../coordinator/run-directory-view.js';
import { EXIT } from './exit-codes.js';

export interface DashboardCommandOptions {
  http: string;
  insecure: boolean;
}

export async function dashboardCommand(runDir: string, opts: DashboardCommandOptions): Promise<number> {
  let server: DashboardServer;
  let url: string;
  try {
    server = new DashboardServer({ listen: opts.http, insecure: opts.insecure, source: new RunDirectoryView(runDir) });
    url = await server.start();
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  process.stderr.write(`dashboard ${url}  (run directory ${runDir}; Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  return EXIT.ok;
}
