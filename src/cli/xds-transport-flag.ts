// `serve --xds-transport`: what serves ADS. http2 (default) is lucid-mesh's own node:http2
// server; grpc-js the original one, kept for comparison and as a fallback (docs/xds-transport.md).
import { Option } from 'commander';
import {
  DEFAULT_XDS_TRANSPORT,
  XDS_TRANSPORTS,
  type XdsTransportName,
} from '../xds/ads-transport.js';
import { choiceOption } from './options.js';

export interface XdsTransportFlags {
  xdsTransport: XdsTransportName;
}

export function xdsTransportOption(): Option {
  return new Option(
    '--xds-transport <name>',
    `what serves ADS on --xds-port: ${XDS_TRANSPORTS.join(' | ')} (http2: node:http2 directly, less CPU and memory per sidecar; grpc-js: the gRPC library, as a fallback)`,
  )
    .env('LUCID_XDS_TRANSPORT')
    .default(DEFAULT_XDS_TRANSPORT)
    .argParser(choiceOption('--xds-transport', XDS_TRANSPORTS));
}
