// The broker URL of the event stream (--events-amqp): checked at start so a typo fails with the
// flag's name instead of retrying forever, and shown only with its password hidden.
export class AmqpUrlError extends Error {
  override readonly name: string = 'AmqpUrlError';
}

export interface BrokerUrl {
  /** What amqplib connects to. */
  readonly url: string;
  /** For logs and errors: the password replaced by ***. */
  readonly redacted: string;
  readonly tls: boolean;
  /** The password (and user:password) as written, so messages quoting them can be scrubbed. */
  readonly secrets: readonly string[];
}

/** Parses an amqp:// or amqps:// URL; errors name `flag` and never quote the password. */
export function parseBrokerUrl(value: string, flag: string): BrokerUrl {
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmqpUrlError(
      `${flag}: not a URL: ${JSON.stringify(redactText(text))} (expected amqp://user:password@host:5672/vhost or amqps://...)`,
    );
  }
  // "amqp://ops:p@ss/word@host/" parses, as host "ss" and vhost "word@host/": the rest of the
  // password would then be shown in every message. An "@" past the host is refused instead.
  if (`${url.pathname}${url.search}`.includes('@')) {
    throw new AmqpUrlError(
      `${flag}: "@" after the host in ${JSON.stringify(redactText(text))}: percent-encode "@" and "/" in the password (%40, %2F) and vhost`,
    );
  }
  const redacted = redactUrl(url);
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') {
    throw new AmqpUrlError(
      `${flag}: expected an amqp:// or amqps:// URL, got ${JSON.stringify(redacted)}`,
    );
  }
  if (url.hostname === '')
    throw new AmqpUrlError(`${flag}: no host in ${JSON.stringify(redacted)}`);
  if (url.port !== '' && (Number(url.port) < 1 || Number(url.port) > 65535)) {
    throw new AmqpUrlError(`${flag}: bad port in ${JSON.stringify(redacted)}`);
  }
  if (url.hash !== '') {
    throw new AmqpUrlError(`${flag}: unexpected #fragment in ${JSON.stringify(redacted)}`);
  }
  const secrets: string[] = [];
  if (url.password) {
    secrets.push(`${url.username}:${url.password}`, url.password);
    const decoded = safeDecode(url.password);
    if (decoded !== url.password) secrets.push(decoded);
  }
  return { url: url.toString(), redacted, tls: url.protocol === 'amqps:', secrets };
}

function redactUrl(url: URL): string {
  if (!url.password) return url.toString();
  const copy = new URL(url.toString());
  copy.password = '***';
  return copy.toString();
}

/**
 * user:password@ in text that did not parse as a URL. The password may hold anything ("/",
 * "#", "@" unencoded), so it runs from the first ":" after "//" to the last "@".
 */
function redactText(text: string): string {
  const start = text.indexOf('//');
  const at = text.lastIndexOf('@');
  if (start < 0 || at < start) return text;
  const colon = text.indexOf(':', start + 2);
  if (colon < 0 || colon > at) return text;
  return `${text.slice(0, colon)}:***${text.slice(at)}`;
}

/** Removes the URL's credentials from a message (amqplib's errors may quote what they got). */
export function scrub(message: string, url: BrokerUrl): string {
  // The redacted URL quoted in it stays as it is: a user named like the password
  // (guest:guest) read "amqp://***:***@...".
  return message
    .split(url.redacted)
    .map((part) => {
      let out = part;
      for (const secret of url.secrets) if (secret) out = out.split(secret).join('***');
      return out;
    })
    .join(url.redacted);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
