// How `lucid-mesh tail` prints events: one header line per event, then per-resource diffs
// (field: old → new). Colour only when printing to a terminal.
import { styleText } from 'node:util';
import type { LostEvent, MeshEvent } from '../telemetry/events.js';

type Style = Parameters<typeof styleText>[0];
const MAX_FIELDS_PER_RESOURCE = 20;

export function formatEvent(e: MeshEvent | LostEvent, colour: boolean): string {
  // The caller decided whether colour is wanted (TTY, NO_COLOR), so styleText must not second-guess it.
  const paint = (style: Style, text: string) =>
    colour ? styleText(style, text, { validateStream: false }) : text;
  const time = e.at.slice(11, 23);
  switch (e.event) {
    case 'snapshot': {
      const lines = [
        `${time} ${paint('bold', 'snapshot')} ${e.version}  ${e.resources.length} change(s), proxies: ${e.proxies.join(', ') || '(none)'}`,
      ];
      for (const r of e.resources) {
        const mark =
          r.change === 'added'
            ? paint('green', '+')
            : r.change === 'removed'
              ? paint('red', '-')
              : paint('yellow', '~');
        lines.push(`  ${mark} ${r.type}/${r.name} ${r.change}`);
        if (r.change === 'added') continue;
        for (const f of r.fields.slice(0, MAX_FIELDS_PER_RESOURCE)) {
          lines.push(
            `      ${f.path}: ${paint('red', show(f.from))} → ${paint('green', show(f.to))}`,
          );
        }
        if (r.fields.length > MAX_FIELDS_PER_RESOURCE)
          lines.push(`      … ${r.fields.length - MAX_FIELDS_PER_RESOURCE} more`);
      }
      return lines.join('\n');
    }
    case 'push': {
      const names = e.upserted ? ` [${e.upserted.join(', ')}]` : '';
      const removed = e.removed.length > 0 ? ` removed [${e.removed.join(', ')}]` : '';
      return `${time} push ${e.node} ${e.type} ${e.version} (${e.resources} resources, ${e.bytes} B)${names}${removed}`;
    }
    case 'ack':
      return `${time} ${paint('green', 'ACK')}  ${e.node} ${e.type} ${e.version}`;
    case 'nack':
      return `${time} ${paint('red', 'NACK')} ${e.node} ${e.type} ${e.version}: ${e.error}`;
    case 'connect':
    case 'disconnect':
      return `${time} ${e.event} ${e.node} (${e.mode})${e.reason ? `: ${e.reason}` : ''}`;
    case 'lost':
      // The server dropped this client for falling behind; tail reconnects and reads on.
      return `${time} ${paint('red', 'lost')} ${e.droppedEvents} event(s): ${e.reason}; reconnecting`;
  }
}

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}
