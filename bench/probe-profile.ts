// The in-process probes (bench/build-probe.ts, bench/diag/*-probe.ts) profile only the part they
// measure when PROBE_PROFILE names a file: start before it, stop (and write the profile) after.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** Starts V8's CPU profiler when PROBE_PROFILE is set; the returned stop writes the profile there. */
export async function startProbeProfile(samplingIntervalUs?: number): Promise<() => Promise<void>> {
  const file = process.env.PROBE_PROFILE;
  if (!file) return async () => undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  if (samplingIntervalUs !== undefined)
    await session.post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}
