// A real nats-server and a control-plane connection for the tests of one describe block: the
// server started (and the streams and the run registry opened) before its tests, both closed
// after them.
import { after, before } from 'node:test';
import { ControlPlane } from '../../common/control/plane.js';
import { RunRegistry } from '../../common/control/registry.js';
import { silentLogger } from '../../common/logging.js';
import { NatsServer } from './nats-server.js';

export interface ControlPlaneFixture {
  readonly server: NatsServer;
  readonly plane: ControlPlane;
  readonly registry: RunRegistry;
}

/** Call at the top of a describe block; the fields are set once its `before` hook has run. */
export function controlPlaneFixture(): ControlPlaneFixture {
  const f = {} as { server: NatsServer; plane: ControlPlane; registry: RunRegistry };
  before(async () => {
    f.server = await NatsServer.start();
    f.plane = await ControlPlane.connect({ url: f.server.url, name: 'test', logger: silentLogger, reconnectWaitMs: 200 });
    await f.plane.ensureStreams();
    f.registry = await RunRegistry.open(f.plane);
  });
  after(async () => {
    await f.plane.close();
    await f.server.stop();
  });
  return f;
}
