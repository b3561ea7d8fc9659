/** The OpenAPI 3.0 description of `cqseg serve` (GET /openapi.json); server.ts implements it. */
const error = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: error } } });

export const OPENAPI = {
  openapi: '3.0.3',
  info: { title: 'cqseg serve', version: '1', description: 'Color-quality invariant segmentation of one trained run, with DCIN color normalization.' },
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: {
        summary: 'liveness and queue state (no token needed)', security: [],
        responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object', properties: { ok: { type: 'boolean' }, active: { type: 'integer' }, queued: { type: 'integer' } } } } } } },
      },
    },
    '/v1/model': {
      get: {
        summary: 'the served model: encoder, input size, classes and colors, the bank, the DCIN modes, whether /browser/ (the in-browser mode) is offered',
        responses: { 200: { description: 'the model', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errorResponse('missing or wrong token') },
      },
    },
    '/v1/references/{index}/thumbnail': {
      get: {
        summary: 'a reference image of the bank (index as /v1/segment reports it), at most 160 px, PNG',
        parameters: [{ name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        responses: { 200: { description: 'PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } }, 404: errorResponse('no such reference, or no bank') },
      },
    },
    '/v1/segment': {
      post: {
        summary: 'segment one image (the body) or several (multipart/form-data files)',
        parameters: [
          { name: 'mode', in: 'query', schema: { type: 'string' }, description: 'a DCIN column: none, gris, lris, full, full-robust, auto, auto-entropy, with +adabn-image or +flip (default auto with a bank, else none)' },
          { name: 'ensemble', in: 'query', schema: { type: 'string', enum: ['softmax', 'logits'] } },
          { name: 'robust', in: 'query', schema: { type: 'boolean' }, description: 'leave specular highlights out of the Lab statistics' },
          { name: 'images', in: 'query', schema: { type: 'string', enum: ['inline', 'none'] }, description: 'mask_png and overlay_png as base64 (default inline)' },
        ],
        requestBody: {
          required: true,
          content: {
            'image/*': { schema: { type: 'string', format: 'binary' } },
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            'multipart/form-data': { schema: { type: 'object', properties: { image: { type: 'array', items: { type: 'string', format: 'binary' } } } } },
          },
        },
        responses: {
          200: {
            description: 'one result per image: classes (index, name, color, pixels, fraction, confidence), confidence, references, ood, timings_ms, mask_png, overlay_png',
            content: { 'application/json': { schema: { type: 'object', properties: { mode: { type: 'string' }, images: { type: 'array', items: { type: 'object' } } } } } },
          },
          400: errorResponse('an empty, truncated or undecodable image, or a bad parameter'),
          401: errorResponse('missing or wrong token'),
          413: errorResponse('a body or an image (pixels, from its header) over the limit'),
          415: errorResponse('not an image'),
          503: errorResponse('the queue is full (Retry-After)'),
        },
      },
    },
  },
} as const;
