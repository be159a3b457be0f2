// How `lucid-mesh events` prints an event of the RabbitMQ stream: the events `tail` also shows
// are printed as `tail` prints them; each line starts with the replica's sequence number.
import { styleText } from 'node:util';
import type { AnyEventEnvelope } from '../events/envelope.js';
import { problemLabel } from '../traffic/provider.js';
import { formatEvent } from './tail-format.js';

export function formatEnvelope(e: AnyEventEnvelope, colour: boolean): string {
  const prefix = `#${e.seq} `;
  const paint = (style: Parameters<typeof styleText>[0], text: string) =>
    colour ? styleText(style, text, { validateStream: false }) : text;
  const time = e.at.slice(11, 23);
  switch (e.key) {
    case 'mesh.changed':
      return prefix + formatEvent({ at: e.at, event: 'snapshot', ...e.data }, colour);
    case 'proxy.connected':
      return prefix + formatEvent({ at: e.at, event: 'connect', ...e.data }, colour);
    case 'proxy.disconnected':
      return prefix + formatEvent({ at: e.at, event: 'disconnect', ...e.data }, colour);
    case 'proxy.nacked':
      return (
        prefix +
        `${time} ${paint('red', 'NACK')} ${e.data.node} ${e.data.type} ${e.data.version}: ${e.data.error}`
      );
    case 'cert.issued':
    case 'cert.rotated':
      return (
        prefix +
        `${time} ${e.key} ${e.data.service} serial ${e.data.serial} (root ${e.data.root}) valid until ${e.data.notAfter}`
      );
    case 'config.rejected':
      return (
        prefix +
        `${time} ${paint('red', 'config.rejected')} ${problemLabel(e.data)}: ${e.data.message}`
      );
  }
}
