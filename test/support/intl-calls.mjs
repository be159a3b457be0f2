// Preload (`node --import`) for test/cli/idle-no-intl.test.ts: wraps the locale-aware built-ins
// whose first call loads ICU data (String#localeCompare ~3 MiB of RSS, Intl.NumberFormat or
// Date#toLocaleString ~7.5 MiB; issue 16) and writes `INTL <name>` and the caller's stack to
// stderr on each one's first call. Calls from tsx's own loader are not counted. Not wrapped:
// String#toLocaleUpperCase/LowerCase and #normalize without a locale (measured +0.1-0.3 MiB: no
// locale data; @peculiar/x509 upper-cases its PEM labels).
const seen = new Set();
function wrap(owner, key, label) {
  const original = owner[key];
  if (typeof original !== 'function') return;
  owner[key] = function (...args) {
    const stack = new Error().stack.split('\n').slice(2, 10).join('\n');
    if (!seen.has(label) && !stack.includes('/node_modules/tsx/')) {
      seen.add(label);
      process.stderr.write(`INTL ${label}\n${stack}\n`);
    }
    return new.target ? Reflect.construct(original, args, new.target) : original.apply(this, args);
  };
}
wrap(String.prototype, 'localeCompare', 'String#localeCompare');
wrap(Number.prototype, 'toLocaleString', 'Number#toLocaleString');
wrap(BigInt.prototype, 'toLocaleString', 'BigInt#toLocaleString');
for (const key of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) {
  wrap(Date.prototype, key, `Date#${key}`);
}
wrap(Array.prototype, 'toLocaleString', 'Array#toLocaleString');
for (const key of [
  'Collator',
  'DateTimeFormat',
  'DisplayNames',
  'ListFormat',
  'Locale',
  'NumberFormat',
  'PluralRules',
  'RelativeTimeFormat',
  'Segmenter',
  'getCanonicalLocales',
  'supportedValuesOf',
]) {
  wrap(Intl, key, `Intl.${key}`);
}
