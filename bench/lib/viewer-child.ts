// A dashboard viewer in its own process (when no Chromium is installed, the
// benchmark attaches this instead): connects to the URL given, prints
// "connected", and on SIGTERM prints "updates N bytes B" and exits.
import { NodeViewer } from '../../src/ui/index.js';

const viewer = await NodeViewer.connect(process.argv[2]!);
console.log('connected');
process.once('SIGTERM', () => {
  console.log(`updates ${viewer.updates} bytes ${viewer.bytesReceived}`);
  void viewer.close().then(() => process.exit(0));
});
