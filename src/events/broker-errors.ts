// What a broker's refusal means for the user, in one line: amqplib's and OpenSSL's messages
// either hide the reason (a refused vhost reads "Expected ConnectionOpenOk; got
// <ConnectionClose channel:0>", amqps:// to a plain port "ssl3_get_record:wrong version
// number") or name the problem but not the flag that fixes it. Used by `serve
// --events-amqp` and `lucid-mesh events`. Never quotes the password (scrubbed by the callers).
import type { BrokerUrl } from './amqp-url.js';

export interface BrokerErrorContext {
  readonly url: BrokerUrl;
  /** The flag naming the exchange (--events-exchange, --exchange). */
  readonly exchangeFlag: string;
}

export function explainBrokerError(message: string, ctx: BrokerErrorContext): string {
  // RabbitMQ closes the connection instead of opening it when the vhost does not exist or the
  // user may not use it (NOT_ALLOWED); amqplib drops the broker's text.
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    const { vhost, user } = vhostOf(ctx.url.url);
    return (
      `the broker refused vhost ${JSON.stringify(vhost)} (NOT_ALLOWED): it does not exist, or ` +
      `user ${JSON.stringify(user)} has no permission on it; the vhost is the URL's path ` +
      '(the default vhost "/" is written %2F, or left out)'
    );
  }
  // The exchange exists with another type or durability: every declare fails the same way.
  if (/PRECONDITION_FAILED - inequivalent arg .* for exchange/.test(message)) {
    return (
      `${message} (${ctx.exchangeFlag}: that exchange exists with other properties than a ` +
      'durable topic exchange; delete it, or choose another name)'
    );
  }
  // amqps:// to a plain AMQP port: OpenSSL's record-layer error says nothing of the cause.
  if (/wrong version number/.test(message)) {
    const { host, port } = new URL(ctx.url.url);
    return (
      `TLS handshake failed: ${host}${port === '' ? ':5671' : ''} does not answer TLS ` +
      "(amqps:// needs the broker's TLS listener, 5671 by default; amqp:// is for the plain one, 5672)"
    );
  }
  // One line: OpenSSL's messages end with a newline.
  return message.trim();
}

/** The vhost and user amqplib takes from the URL (an empty path is "/", no user is guest). */
function vhostOf(url: string): { vhost: string; user: string } {
  const parsed = new URL(url);
  const path = parsed.pathname.slice(1);
  return {
    vhost: path === '' ? '/' : safeDecode(path),
    user: parsed.username === '' ? 'guest' : safeDecode(parsed.username),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
