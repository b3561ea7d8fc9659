/** `cqseg serve --model RUN [--refs BANK]`: the HTTP API of src/serve/server.ts. */
import { startServer } from '../../serve/server';
import { deviceFlag, DEVICE_HELP, intFlag, parseArgs } from '../args';
import { Command, UsageError } from '../command';

const HELP = `usage: cqseg serve --model RUN [--refs BANK] [--host 127.0.0.1] [--port 8080] [--token TOKEN]
                   [--max-body-mb N] [--max-pixels N] [--queue N] [--max-batch N] [--timeout S]

Loads a trained run (and its reference bank) once and serves it over HTTP:
  POST /v1/segment    an image as the body (Content-Type image/... or application/octet-stream),
                      or multipart/form-data with several; query: mode (a DCIN column, default
                      auto with --refs, else none), ensemble, robust, images=inline|none.
                      JSON per image: classes (name, color, pixels, fraction, confidence),
                      confidence, references, ood, timings_ms, mask_png and overlay_png (base64)
  GET  /v1/model      encoder, input size, classes and colors, the bank
  GET  /healthz       liveness and the queue
  GET  /openapi.json  the API

  curl --data-binary @image.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/v1/segment?mode=auto'

options:
  --model RUN       run folder (config.json + model.safetensors)
  --refs BANK       reference bank made for RUN (cqseg references); enables DCIN modes and OOD
  --host H          default 127.0.0.1; any other address needs --token
  --port P          default 8080 (0: a free port, printed)
  --token TOKEN     clients send Authorization: Bearer TOKEN (not needed for /healthz)
  --max-body-mb N   largest request body (default 32)
  --max-pixels N    largest image, from its header before decoding (default: free memory's limit)
  --queue N         requests that may wait while one runs (default 8); more get 503 + Retry-After
  --max-batch N     images one forward pass takes from concurrent requests of the same
                    settings (default 8; 1: one request at a time)
  --timeout S       per request, waiting included (default 120)
  ${DEVICE_HELP}
Stops on SIGINT/SIGTERM after finishing the requests it accepted.
`;

export const command: Command = {
  name: 'serve',
  summary: 'serve a trained run over HTTP: /v1/segment, /v1/model, /healthz, /openapi.json',
  help: HELP,
  async run(args) {
    const { flags, positionals } = parseArgs(args, {
      model: {}, refs: {}, host: {}, port: {}, token: {}, 'max-body-mb': {}, 'max-pixels': {}, queue: {}, 'max-batch': {}, timeout: {}, device: {},
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const model = flags.model as string | undefined;
    if (!model) throw new UsageError('--model RUN is required');
    const mb = intFlag(flags['max-body-mb'], 'max-body-mb', 1);
    const timeout = intFlag(flags.timeout, 'timeout', 1);
    const server = await startServer({
      model, refs: flags.refs as string | undefined, host: flags.host as string | undefined, port: intFlag(flags.port, 'port', 0) ?? 8080,
      token: flags.token as string | undefined, maxBodyBytes: mb === undefined ? undefined : mb * 2 ** 20,
      maxPixels: intFlag(flags['max-pixels'], 'max-pixels', 1), queue: intFlag(flags.queue, 'queue', 0), maxBatch: intFlag(flags['max-batch'], 'max-batch', 1),
      timeoutMs: timeout === undefined ? undefined : timeout * 1000, device: deviceFlag(flags.device),
    });
    process.stderr.write(`cqseg serve: ${server.url} (model ${model}${flags.refs ? `, bank ${flags.refs as string}` : ''}); Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.stderr.write('cqseg serve: stopping after the accepted requests\n');
        void server.close().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
